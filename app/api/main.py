from fastapi import APIRouter

from app.api.routes import chat, guard_score, health, models

api_router = APIRouter()
for module in (chat, models, guard_score, health):
    api_router.include_router(module.router)
