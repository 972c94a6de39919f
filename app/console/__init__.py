"""The review console: decisions from the audit stream in a database, a server-rendered web app to review them, and
the export of reviewed decisions as labelled JSON lines (docs/review-console.md)."""
