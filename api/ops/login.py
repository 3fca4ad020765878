"""The login form and logout: the same accounts, password check and lockout as the json api."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.controllers import provide_login_throttle
from api.ops.auth import OPS_PATH, OPS_PUBLIC, VIEW, Operator, start_session
from api.ops.pages import age, page, safe_next
from api.protection import STRICT_RATE_LIMIT
from core.accounts import service as accounts
from core.accounts.throttle import LoginThrottle
from core.errors import TooManyRequestsError, UnauthorizedError

NO_ROLE = "This account cannot use the dashboard: it needs the support or admin role."


class LoginController(Controller):
    path = OPS_PATH
    include_in_schema = False
    dependencies = {"throttle": Provide(provide_login_throttle, sync_to_thread=False)}

    @get("/login", opt=OPS_PUBLIC)
    async def form(
        self,
        request: Request[Any, Any, Any],
        next_page: Annotated[str | None, QueryParameter(name="next")] = None,
    ) -> Response[Any]:
        return page(request, "login.html", next=safe_next(next_page), email="", error=None)

    @post("/login", opt={**OPS_PUBLIC, **STRICT_RATE_LIMIT})
    async def login(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        throttle: NamedDependency[LoginThrottle],
        client_address: NamedDependency[str],
    ) -> Response[Any]:
        form = await request.form()
        email, target = str(form.get("email", "")).strip(), safe_next(form.get("next"))
        try:
            user = await accounts.authenticate(
                db_session,
                throttle,
                email=email,
                password=str(form.get("password", "")),
                address=client_address,
            )
        except UnauthorizedError as exc:
            error, status = exc.detail, 401
        except TooManyRequestsError as exc:
            error, status = f"{exc.detail} (about {age(exc.retry_after)}).", 429
        else:
            await db_session.commit()  # keeps a password hash `authenticate` upgraded
            if Operator.of(user).can_view:
                start_session(request, user)
                return Redirect(path=target, status_code=303)
            error, status = NO_ROLE, 403
        return page(
            request, "login.html", status_code=status, next=target, email=email, error=error
        )

    @post("/logout", guards=[VIEW])
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        request.clear_session()
        return Redirect(path=f"{OPS_PATH}/login", status_code=303)
