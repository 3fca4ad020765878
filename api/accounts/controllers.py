from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.authentication import BEARER_SECURITY, PUBLIC, Caller
from api.accounts.guards import ANY_ROLE, requires_role
from api.accounts.schemas import (
    LoginIn,
    ProfileOut,
    RefreshIn,
    RegisterIn,
    TokensOut,
    UpdateUserIn,
    UserOut,
)
from api.errors import problem_responses
from api.protection import STRICT_RATE_LIMIT
from core.accounts import service
from core.accounts.throttle import LoginThrottle
from core.settings import Settings


def provide_login_throttle(state: State) -> LoginThrottle:
    return LoginThrottle(state.redis, state.settings)


class AuthController(Controller):
    """Public routes: the credentials are in the body. Password routes get the strict rate limit."""

    path = "/api/auth"
    tags = ["auth"]
    opt = PUBLIC
    dependencies = {"throttle": Provide(provide_login_throttle, sync_to_thread=False)}

    @post(
        "/register",
        status_code=HTTP_201_CREATED,
        summary="Create an account and log in",
        opt=STRICT_RATE_LIMIT,
        responses=problem_responses(400, 409, 413, 429),
    )
    async def register(
        self,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        data: JSONBody[RegisterIn],
    ) -> TokensOut:
        issued = await service.register(
            db_session, settings, data.email, data.password, data.device_id
        )
        await db_session.commit()
        return TokensOut.from_issued(issued)

    @post(
        "/login",
        status_code=200,
        summary="Exchange email and password for tokens",
        description="Failed logins are counted per account and per client address; over the "
        "limit the answer is 429 `login_locked` with Retry-After.",
        opt=STRICT_RATE_LIMIT,
        responses=problem_responses(400, 401, 413, 429),
    )
    async def login(
        self,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        throttle: NamedDependency[LoginThrottle],
        client_address: NamedDependency[str],
        data: JSONBody[LoginIn],
    ) -> TokensOut:
        issued = await service.login(
            db_session,
            settings,
            throttle,
            email=data.email,
            password=data.password,
            address=client_address,
            device_id=data.device_id,
        )
        await db_session.commit()
        return TokensOut.from_issued(issued)

    @post(
        "/refresh",
        status_code=200,
        summary="Rotate a refresh token",
        description="The presented token stops working. Presenting an already rotated token "
        "revokes every token of its login (401 `refresh_token_reused`).",
        responses=problem_responses(400, 401, 429),
    )
    async def refresh(
        self,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        data: JSONBody[RefreshIn],
    ) -> TokensOut:
        try:
            issued = await service.refresh(db_session, settings, data.refresh_token)
        except service.RefreshTokenReusedError:
            await db_session.commit()  # the family's revocation must outlive this 401
            raise
        await db_session.commit()
        return TokensOut.from_issued(issued)

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        summary="Revoke a refresh token and every token of its login",
        responses=problem_responses(400, 429),
    )
    async def logout(
        self, db_session: NamedDependency[AsyncSession], data: JSONBody[RefreshIn]
    ) -> None:
        await service.logout(db_session, data.refresh_token)
        await db_session.commit()


class UserController(Controller):
    """The caller's own account: every role may read and manage its own credentials."""

    path = "/api/user"
    tags = ["user"]
    security = BEARER_SECURITY
    guards = [requires_role(*ANY_ROLE)]
    dependencies = {"throttle": Provide(provide_login_throttle, sync_to_thread=False)}

    @get("/profile", summary="Who am I", responses=problem_responses(401, 429))
    async def profile(
        self, db_session: NamedDependency[AsyncSession], request: Caller
    ) -> ProfileOut:
        user = await service.get_user(db_session, request.user.user_id)
        balance = await service.points_balance(db_session, user.id)
        subscription = await service.subscription_summary(db_session, user.id)
        return ProfileOut.from_model(user, balance, subscription)

    @patch(
        "/update",
        summary="Change email or password",
        description="Needs `currentPassword`. A new password revokes every other session; pass "
        "your own `refreshToken` to keep this one.",
        responses=problem_responses(400, 401, 403, 409, 429),
    )
    async def update(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
        throttle: NamedDependency[LoginThrottle],
        client_address: NamedDependency[str],
        data: JSONBody[UpdateUserIn],
    ) -> UserOut:
        changes = service.UserChanges(
            current_password=data.current_password,
            email=data.email,
            new_password=data.new_password,
            keep_refresh_token=data.refresh_token,
        )
        user = await service.update_user(
            db_session, throttle, request.user.user_id, changes, client_address
        )
        await db_session.commit()
        return UserOut.from_model(user)
