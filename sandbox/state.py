"""The sandbox's in-memory world: clock, registered keys, issued tokens, invoices, subscriptions.

One `Sandbox` lives for the life of the process; the control API resets it between tests. Ids
keep counting across resets so that a test database never sees the same invoiceId twice.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter

from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar

from sandbox.clock import Clock
from sandbox.config import SandboxConfig
from sandbox.keys import parse_registered_keys
from sandbox.purchases import Invoice, InvoiceBook, InvoiceChanged
from sandbox.subscriptions import Period, Plan, Subscription, SubscriptionBook, SubscriptionChanged

Event = InvoiceChanged | SubscriptionChanged
Listener = Callable[[Event], None]

# Test invoice ids start at 10^9, the threshold one Go client uses to tell test tokens apart.
FIRST_PROD_INVOICE_ID = 200_001
FIRST_TEST_INVOICE_ID = 1_000_000_001


@dataclass
class RegisteredKey:
    public_key: rsa.RSAPublicKey
    enabled: bool = True


@dataclass(frozen=True)
class Token:
    key_id: str
    expires_at: datetime


class Sandbox:
    """State plus the operations that need more than one part of it (ids, clock, events)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.keys: dict[str, RegisteredKey] = {}
        self.tokens: dict[str, Token] = {}
        self.invoices = InvoiceBook(self._emit)
        self.subscriptions = SubscriptionBook(self._emit)
        self._listeners: list[Listener] = []
        self._invoice_ids = {
            False: itertools.count(FIRST_PROD_INVOICE_ID),
            True: itertools.count(FIRST_TEST_INVOICE_ID),
        }
        self._subscription_ids = itertools.count(1001)
        self._user_ids = itertools.count(90_001)
        self._load_configured_keys()

    def _load_configured_keys(self) -> None:
        self.keys = {
            key_id: RegisteredKey(public_key)
            for key_id, public_key in parse_registered_keys(self.config.keys).items()
        }

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)

    def reset(self) -> None:
        """Forget invoices and subscriptions, restore the configured keys, rewind the clock.

        Issued tokens survive, so a client that cached one does not have to notice the reset.
        """
        self.invoices.clear()
        self.subscriptions.clear()
        self.clock.reset()
        self._load_configured_keys()

    def create_invoice(
        self,
        *,
        product_code: str,
        amount: int,
        two_stage: bool,
        test: bool,
        developer_payload: str | None,
        order_id: str | None,
        app_id: int | None,
        user_id: int | None,
    ) -> Invoice:
        invoice = Invoice(
            invoice_id=next(self._invoice_ids[test]),
            purchase_id=str(uuid.uuid4()),
            order_id=order_id or str(uuid.uuid4()),
            app_id=app_id or self.config.app_id,
            owner_code=self.config.owner_code,
            product_code=product_code,
            amount=amount,
            two_stage=two_stage,
            test=test,
            developer_payload=developer_payload,
            user_id=user_id or next(self._user_ids),
            created_at=self.clock.now(),
        )
        self.invoices.add(invoice)
        return invoice

    def create_subscription(
        self,
        *,
        product_code: str,
        plan: Plan,
        test: bool,
        developer_payload: str | None,
        app_id: int | None,
        package_name: str | None,
        user_id: int | None,
    ) -> Subscription:
        """A subscription the user has just bought: trial started or first period paid."""
        now = self.clock.now()
        first_period = plan.trial or plan.period
        sub = Subscription(
            subscription_id=next(self._subscription_ids),
            invoice_id=next(self._invoice_ids[test]),
            purchase_id=str(uuid.uuid4()),
            app_id=app_id or self.config.app_id,
            package_name=package_name or self.config.package_name,
            product_code=product_code,
            plan=plan,
            test=test,
            developer_payload=developer_payload,
            user_id=user_id or next(self._user_ids),
            start_time=now,
            paid_until=now + timedelta(seconds=first_period),
            period=Period.TRIAL if plan.trial else Period.MAIN,
            charges=0 if plan.trial and plan.trial_price == 0 else 1,
        )
        self.subscriptions.activate(sub)
        return sub

    def process_due(self) -> None:
        """Apply every scheduled transition up to now, oldest first, each at its own due time."""
        now = self.clock.now()
        while True:
            due = itertools.chain(self.invoices.due(), self.subscriptions.due())
            step = min(due, key=itemgetter(0), default=None)
            if step is None or step[0] > now:
                return
            at, action = step
            action(at)

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.process_due()


def app_sandbox(app: Litestar) -> Sandbox:
    """The process's Sandbox, for guards, middleware and exception handlers (no injection there)."""
    sandbox = app.state["sandbox"]
    assert isinstance(sandbox, Sandbox)
    return sandbox
