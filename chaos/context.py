"""What every scenario gets: the running stack, users with tokens, paid RuStore purchases, the load
driver in its own process, SQL against the stack's database, and the scenario's result."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench import seed
from chaos.driver import Answer, DriverSpec, Request
from chaos.stack import ChaosStack
from core.accounts.tokens import issue_access_token
from core.catalogue.repository import ProductRepository
from core.db import utcnow
from core.queue import PURCHASE_VERIFY, create_broker, send
from core.settings import Settings, load_settings

T = TypeVar("T")
N = TypeVar("N", int, float)
PRODUCTS = {seed.PRODUCT: (100, seed.PRICE_KOPECKS), "coins_500": (500, 39_900)}
"""product id → (points, price in kopecks); the bench seeds the first, the harness adds the rest."""
SANDBOX_THREADS = 8
INTENT_CHUNK = 500
COUNTER_BUDGET = 1_000_000


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Paid:
    """A purchase the user paid for in RuStore (the sandbox), as the app would report it."""

    user: User
    invoice_id: int
    purchase_id: str
    product_id: str
    order_id: str
    two_stage: bool

    def verify(self, key: str | None = None, user: User | None = None) -> Request:
        body = {
            "purchaseId": self.purchase_id,
            "invoiceId": self.invoice_id,
            "productId": self.product_id,
            "orderId": self.order_id,
        }
        return Request(
            path="/api/payments/verify",
            body=body,
            token=(user or self.user).token,
            key=key or uuid.uuid4().hex,
        )


class Load:
    """A driver run going on in its own process while the scenario breaks things."""

    def __init__(self, popen: subprocess.Popen[bytes], out: Any, started: float) -> None:
        self.popen = popen
        self.out = out
        self.started = started

    def wait(self, timeout: float = 600) -> list[Answer]:
        _, stderr = self.popen.communicate(timeout=timeout)
        if self.popen.returncode != 0:
            raise RuntimeError(f"chaos driver failed: {stderr.decode(errors='replace')[-2000:]}")
        return msgspec.json.decode(self.out.read_bytes(), type=list[Answer])


@dataclass
class Context:
    stack: ChaosStack
    full: bool
    http: httpx.Client = field(init=False)
    _files: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.stack.api_url, timeout=30)
        # One pooled client: a new one per call costs more CPU than the sandbox's answer.
        self.control = httpx.Client(
            base_url=f"{self.stack.bench.sandbox_url}/control",
            timeout=30,
            limits=httpx.Limits(max_connections=SANDBOX_THREADS),
        )

    @property
    def settings(self) -> Settings:
        return load_settings(self.stack.env)

    def scale(self, ci: N, full: N) -> N:
        """The CI subset's shortened figure, or the full run's."""
        return full if self.full else ci

    # --- the database ---------------------------------------------------------------------------

    def db(self, job: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
        return asyncio.run(seed.Database(self.settings).run(job))

    def sql(self, query: str, **params: Any) -> list[Any]:
        """Rows of one read-only query (the audit and the checks look, never write, this way)."""

        async def run(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
            async with sessions() as session:
                return list((await session.execute(text(query), params)).all())

        return self.db(run)

    def seed_catalogue(self) -> None:
        async def insert(sessions: async_sessionmaker[AsyncSession]) -> None:
            async with sessions() as session:
                for product_id, (points, price) in PRODUCTS.items():
                    await ProductRepository(session).insert_new(
                        {
                            "id": uuid.uuid4(),
                            "product_id": product_id,
                            "type": "consumable",
                            "title": product_id,
                            "points": points,
                            "price_kopecks": price,
                        }
                    )
                await session.commit()

        self.db(insert)

    # --- users and purchases --------------------------------------------------------------------

    def users(self, count: int, role: str = "user") -> list[User]:
        ids = self.db(lambda sessions: seed.users(sessions, count))
        now = utcnow()
        return [User(i, issue_access_token(self.settings, i, [role], now)) for i in ids]

    def grant(self, users: list[User], amount: int) -> None:
        self.db(lambda sessions: seed.grants(sessions, [u.id for u in users], amount))

    def paid(
        self,
        users: list[User],
        count: int,
        product_id: str = seed.PRODUCT,
        *,
        two_stage: bool | None = None,
        pay: bool = True,
        **create: Any,
    ) -> list[Paid]:
        """`count` intents spread over `users`, each bought in the sandbox (and paid, unless
        `pay` is False); `two_stage=None` alternates one-stage and two-stage payments."""

        async def make_intents(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
            from core.purchases import service as purchases

            issued = []
            for first in range(0, count, INTENT_CHUNK):  # a short session per chunk
                async with sessions() as session:
                    issued += [
                        await purchases.create_intent(
                            session, users[n % len(users)].id, product_id, purchases.ONE_TIME_TYPES
                        )
                        for n in range(first, min(count, first + INTENT_CHUNK))
                    ]
                    await session.commit()
            return issued

        intents = self.db(make_intents)
        owners = {u.id: u for u in users}

        def buy(index: int) -> Paid:
            intent = intents[index]
            stage = (index % 2 == 1) if two_stage is None else two_stage
            body = {
                "productCode": product_id,
                "amount": PRODUCTS[product_id][1],
                "twoStage": stage,
                "developerPayload": intent.developer_payload,
                "orderId": str(intent.order_id),
                **create,
            }
            created = self.control.post("/purchases", json=body).raise_for_status().json()
            if pay:
                self.control.post(f"/purchases/{created['invoiceId']}/pay").raise_for_status()
            return Paid(
                owners[intent.user_id],
                created["invoiceId"],
                created["purchaseId"],
                created["productCode"],
                str(intent.order_id),
                stage,
            )

        with ThreadPoolExecutor(SANDBOX_THREADS) as pool:
            return list(pool.map(buy, range(count)))

    # --- load -----------------------------------------------------------------------------------

    def start_load(self, requests: Iterable[Request], **options: Any) -> Load:
        """Run the driver in its own process over `requests`; returns at once."""
        number = next(self._files)
        spec_path = self.stack.log_dir / f"driver-{number}.spec.json"
        out = self.stack.log_dir / f"driver-{number}.out.json"
        spec = DriverSpec(api_url=self.stack.api_url, requests=list(requests), **options)
        spec_path.write_bytes(msgspec.json.encode(spec))
        popen = subprocess.Popen(
            [sys.executable, "-m", "chaos.driver", str(spec_path), str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return Load(popen, out, time.time())

    def submit(self, requests: Iterable[Request], **options: Any) -> list[Answer]:
        return self.start_load(requests, **options).wait()

    def send_verify(self, purchase_id: str, **options: Any) -> None:
        """Send `purchase.verify` as the api or the sweeper would; `options` are Dramatiq message
        options (`max_retries=0` makes the next delivery the last one)."""
        broker = create_broker(self.stack.env["REDIS_URL"], socket_timeout=5)
        try:
            send(broker, PURCHASE_VERIFY, purchase_id, **options)
        finally:
            broker.close()

    def counter(self, path_glob: str) -> Counter:
        """Count the sandbox requests on `path_glob` that get past the fault rules added before."""
        return Counter(self, self.fault(endpoint=path_glob, times=COUNTER_BUDGET))

    # --- the sandbox ----------------------------------------------------------------------------

    def fault(self, **rule: Any) -> int:
        """Add a sandbox fault rule (camelCase fields); returns its id."""
        return int(self.stack.sandbox("POST", "/faults", rule)["id"])

    def end_fault(self, rule_id: int) -> None:
        self.stack.sandbox("DELETE", f"/faults/{rule_id}")

    def clear_faults(self) -> None:
        self.stack.sandbox("DELETE", "/faults")

    def sandbox_purchase(self, invoice_id: int) -> dict[str, Any]:
        return dict(self.stack.sandbox("GET", f"/purchases/{invoice_id}"))

    def notifications_to_kopilka(self, **settings: Any) -> None:
        """Point the sandbox's notification cards at the running api (on), or switch them off."""
        api = self.stack.api_url
        self.stack.sandbox(
            "PATCH",
            "/notifications",
            {
                "url": f"{api}/api/webhooks/rustore",
                "key": self.stack.env["RUSTORE_WEBHOOK_KEY"],
                "testUrl": f"{api}/api/webhooks/rustore/sandbox",
                "testKey": self.stack.env["RUSTORE_SANDBOX_WEBHOOK_KEY"],
                "retrySeconds": [0.5, 1, 2],
                **settings,
            },
        )


@dataclass(frozen=True)
class Counter:
    """A no-effect sandbox fault rule whose remaining `times` tells how many requests it saw."""

    ctx: Context
    rule_id: int

    @property
    def count(self) -> int:
        rules = self.ctx.stack.sandbox("GET", "/faults")
        remaining = next((r["times"] for r in rules if r["id"] == self.rule_id), 0)
        return COUNTER_BUDGET - int(remaining)


def accepted_ids(answers: Iterable[Answer]) -> dict[str, str]:
    """Idempotency key → purchase id, for every request the api answered 202."""
    return {a.key: str(a.body["id"]) for a in answers if a.status == 202}


def statuses(answers: Iterable[Answer]) -> dict[str, int]:
    """How often each outcome was seen, tries included (a 500 anywhere is a finding)."""
    counts: dict[str, int] = {}
    for answer in answers:
        for seen in answer.seen:
            counts[seen] = counts.get(seen, 0) + 1
    return counts
