from fastapi import APIRouter

from app.api.routes import chat, guard_score, health, models, users

api_router = APIRouter()
for module in (chat, models, guard_score, health, users):
    api_router.include_router(module.router)
