{{/* Pod security of the replay Jobs: the proxy's non-root user, and its group owns what it writes on the volume. */}}
{{- define "heedful.replayPodSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
  fsGroup: {{ .Values.securityContext.runAsGroup | default 10001 }}
{{- end }}

{{/* The shared volume at /data, the policies at /etc/heedful/policies, and a writable /tmp. */}}
{{- define "heedful.replayMounts" -}}
- name: replay-data
  mountPath: /data
- name: heedful-policies
  mountPath: /etc/heedful/policies
  readOnly: true
- name: heedful-tmp
  mountPath: /tmp
{{- end }}

{{- define "heedful.replayVolumes" -}}
- name: replay-data
  persistentVolumeClaim:
    claimName: {{ .Values.replayJob.storage.existingClaim }}
{{ include "heedful.volumes" . }}
{{- end }}
