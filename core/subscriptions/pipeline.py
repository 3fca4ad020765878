"""Reading subscriptions from RuStore: the `subscription.verify` and `subscription.check` jobs,
the refresh a SUBSCRIPTION_EVENT notification asks for, and the admin refund.

Whatever triggered it, a refresh asks RuStore and stores what RuStore answered; nothing a client
or a notification claims is ever taken as state. Each answer is applied under a row lock and
only if it is not older than the one stored (asked earlier, or naming an earlier charge), so a
redelivered job or a late notification can never move a subscription back or extend access
beyond RuStore's latest answer.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from core.audit import service as audit
from core.audit.models import Target
from core.catalogue.models import ProductType
from core.db import create_sessionmaker, utcnow
from core.errors import ConflictError, KopilkaError, NotFoundError, ServiceUnavailableError
from core.purchases.pipeline import NOT_FOUND_ATTEMPTS, RetryLater
from core.purchases.repository import PurchaseRepository, purchase_statements
from core.rustore import (
    RuStoreClient,
    RuStoreError,
    RuStoreNotFound,
    RuStorePermanentError,
    SubscriptionPurchase,
)
from core.subscriptions import service
from core.subscriptions.derivation import SubscriptionStatus, derive, order_sequence
from core.subscriptions.models import OPEN_VERIFICATION, Subscription, Verification
from core.subscriptions.repository import SubscriptionRepository
from core.subscriptions.schedule import CheckPolicy, next_check

log = structlog.get_logger(__name__)

MICROS_PER_KOPECK = 10_000
ALREADY_REFUNDED = "already been refunded"


@dataclass(frozen=True)
class SubscriptionEvent:
    """What a SUBSCRIPTION_EVENT notification names: enough to read the subscription again."""

    purchase_id: str
    product_code: str | None
    sandbox: bool


@dataclass(frozen=True)
class Verdict:
    owner_id: uuid.UUID | None
    problem: str | None


class SubscriptionSync:
    def __init__(self, engine: AsyncEngine, rustore: RuStoreClient, policy: CheckPolicy) -> None:
        self.engine = engine
        self.sessions = create_sessionmaker(engine)
        self.rustore = rustore
        self.policy = policy

    # --- subscription.verify ----------------------------------------------------------------

    async def verify(self, subscription_id: uuid.UUID, *, last_attempt: bool) -> None:
        """Decide whether RuStore backs a submitted subscription; `RetryLater` to try again."""
        async with self.sessions() as session:
            lease_until = utcnow() + self.policy.lease
            sub = await SubscriptionRepository(session).start_attempt(subscription_id, lease_until)
            await session.commit()
        if sub is None:
            log.info("subscription.verify.skipped", subscription_id=str(subscription_id))
            return
        log.info("subscription.verify.attempt", subscription_id=str(sub.id), attempt=sub.attempts)
        observed_at = utcnow()
        try:
            purchase = await self._fetch(sub)
        except RuStoreError as exc:
            await self._retry_or_finish(sub, exc, last_attempt=last_attempt)
            return
        verdict = await self._check(sub, purchase)
        if verdict.problem is not None:
            await self._finish(sub, Verification.REJECTED, verdict.problem, purchase)
            return
        assert verdict.owner_id is not None
        await self._acknowledge(sub, purchase)
        await self._observe(sub.id, purchase, observed_at, owner_id=verdict.owner_id)
        if verdict.owner_id != sub.user_id:
            log.warning("subscription.owner_differs_from_submitter", subscription_id=str(sub.id))

    async def _check(self, sub: Subscription, purchase: SubscriptionPurchase) -> Verdict:
        """Compare RuStore's object with what we issued; never with what the client claimed.

        RuStore only shows our app's subscriptions under our package name and the product code
        in the path, so the app and the product are checked by the read itself.
        """
        async with purchase_statements(self.engine) as statements:
            product, intent = await statements.product_and_intent(
                sub.product_id, purchase.developer_payload
            )
        if product is None or product.type != ProductType.SUBSCRIPTION or not product.active:
            return Verdict(None, f"{sub.product_id!r} is not an active subscription product")
        expected = product.price_kopecks and product.price_kopecks * MICROS_PER_KOPECK
        charged = purchase.price_amount_micros
        if expected and charged is not None and charged != expected:
            return Verdict(None, f"RuStore's price is {charged} micros, expected {expected}")
        if sub.rustore_purchase_id is None:
            # v3 (legacy token) carries no developer payload: the token, known only to the
            # paying device and unique here, binds it to whoever submitted it.
            return Verdict(sub.user_id, None)
        if intent is None or intent.product_id != sub.product_id:
            return Verdict(None, "developer payload does not match an intent for this product")
        return Verdict(intent.user_id, None)

    async def _retry_or_finish(
        self, sub: Subscription, exc: RuStoreError, *, last_attempt: bool
    ) -> None:
        """Reject what RuStore keeps not knowing; fail on a refusal or the last attempt."""
        reason = f"RuStore: {exc.rustore_message or exc}"
        if isinstance(exc, RuStoreNotFound) and sub.attempts >= NOT_FOUND_ATTEMPTS:
            await self._finish(sub, Verification.REJECTED, "RuStore does not know it")
        elif last_attempt or (
            isinstance(exc, RuStorePermanentError) and not isinstance(exc, RuStoreNotFound)
        ):
            await self._finish(sub, Verification.FAILED, reason)
        else:
            raise RetryLater(reason) from exc

    async def _finish(
        self,
        sub: Subscription,
        verification: Verification,
        reason: str,
        purchase: SubscriptionPurchase | None = None,
    ) -> None:
        async with self.sessions() as session:
            await SubscriptionRepository(session).transition(
                sub.id,
                OPEN_VERIFICATION,
                verification=verification,
                failure_reason=reason[:500],
                rustore=msgspec.to_builtins(purchase) if purchase else None,
                next_check_at=None,
            )
            await session.commit()
        log.info(
            "subscription.verify.finished",
            subscription_id=str(sub.id),
            verification=verification.value,
            reason=reason,
        )

    # --- subscription.check, notifications, "renew" ----------------------------------------

    async def check(self, subscription_id: uuid.UUID) -> None:
        """Re-read a verified subscription from RuStore and apply what it says."""
        async with self.sessions() as session:
            sub = await SubscriptionRepository(session).get(subscription_id)
        if sub is None or not sub.is_verified or sub.refunded_at is not None:
            log.info("subscription.check.skipped", subscription_id=str(subscription_id))
            return
        log.info("subscription.check.attempt", subscription_id=str(sub.id))
        observed_at = utcnow()
        try:
            purchase = await self._fetch(sub)
        except RuStorePermanentError as exc:
            await self._check_refused(sub, exc)
            return
        await self._acknowledge(sub, purchase)
        await self._observe(sub.id, purchase, observed_at)

    async def refresh(self, event: SubscriptionEvent) -> str:
        """For a SUBSCRIPTION_EVENT notification: re-read the subscription it names from RuStore
        (never trusting the notification's own fields), recording it first for the owner of its
        developer payload when the app has not reported it yet. A note for the journal; safe for
        duplicate and late deliveries."""
        async with self.sessions() as session:
            sub = await SubscriptionRepository(session).by_rustore_reference(
                event.purchase_id, None
            )
        if sub is None:
            adopted, note = await self._adopt(event)
            if adopted is None:
                return note
            sub = adopted
        if not sub.is_verified:
            await self.verify(sub.id, last_attempt=False)
            return f"verified subscription {sub.id} with RuStore"
        await self.check(sub.id)
        return f"re-read subscription {sub.id} from RuStore"

    async def _adopt(self, event: SubscriptionEvent) -> tuple[Subscription | None, str]:
        """Record a subscription RuStore told us about before the app did, for the intent's
        user, through the app's own submission path (so the app's later report dedupes)."""
        if event.product_code is None:
            return None, f"no subscription with RuStore purchase id {event.purchase_id}"
        purchase = await self.rustore.get_subscription(
            event.product_code, event.purchase_id, sandbox=event.sandbox
        )
        async with self.sessions() as session:
            intent = (
                await PurchaseRepository(session).intent_by_payload(purchase.developer_payload)
                if purchase.developer_payload
                else None
            )
            if intent is None:
                return None, "the developer payload matches no subscription intent"
            submission = service.Submission(
                product_id=intent.product_id,
                rustore_purchase_id=event.purchase_id,
                subscription_token=None,
                invoice_id=None,
                order_id=intent.order_id,
                sandbox=event.sandbox,
            )
            try:
                sub, _ = await service.submit(session, intent.user_id, submission)
            except KopilkaError as exc:  # reported just now by the app, or not sold any more
                return None, exc.detail
            await session.commit()
        return sub, f"recorded subscription {sub.id}"

    async def _check_refused(self, sub: Subscription, exc: RuStorePermanentError) -> None:
        """RuStore will not show it now: look again after the longest dunning step rather
        than every lease, and leave the last known state (and its end date) in place."""
        retry_at = utcnow() + dt.timedelta(seconds=max(self.policy.dunning_seconds))
        async with self.sessions() as session:
            await SubscriptionRepository(session).set_next_check(sub.id, retry_at)
            await session.commit()
        log.warning(
            "subscription.check.refused",
            subscription_id=str(sub.id),
            message=exc.rustore_message or str(exc),
            next_check_at=retry_at.isoformat(),
        )

    # --- shared --------------------------------------------------------------------------------

    async def _fetch(self, sub: Subscription) -> SubscriptionPurchase:
        if sub.rustore_purchase_id is not None:
            return await self.rustore.get_subscription(
                sub.product_id, sub.rustore_purchase_id, sandbox=sub.sandbox
            )
        assert sub.subscription_token is not None
        return await self.rustore.get_subscription_v3(
            sub.product_id, sub.subscription_token, sandbox=sub.sandbox
        )

    async def _acknowledge(self, sub: Subscription, purchase: SubscriptionPurchase) -> None:
        """Acknowledge delivery once; optional at RuStore, so a failure is only logged and
        the next check (which sees acknowledgementState 0 again) tries again."""
        if purchase.acknowledgement_state != 0:
            return
        try:
            if sub.rustore_purchase_id is not None:
                await self.rustore.acknowledge_subscription(
                    sub.product_id, sub.rustore_purchase_id, sandbox=sub.sandbox
                )
            else:
                assert sub.subscription_token is not None
                await self.rustore.acknowledge_subscription_glike(
                    sub.product_id, sub.subscription_token, sandbox=sub.sandbox
                )
        except RuStoreError as exc:
            log.warning(
                "subscription.acknowledge_failed", subscription_id=str(sub.id), error=str(exc)
            )

    async def _observe(
        self,
        subscription_id: uuid.UUID,
        purchase: SubscriptionPurchase,
        observed_at: dt.datetime,
        *,
        owner_id: uuid.UUID | None = None,
    ) -> None:
        """Store RuStore's answer and what it means, unless a newer answer is stored already."""
        async with self.sessions() as session:
            sub = await SubscriptionRepository(session).get(subscription_id, lock=True)
            if sub is None or _is_stale(sub, purchase, observed_at):
                log.info("subscription.observation_stale", subscription_id=str(subscription_id))
                return
            before = sub.status
            _apply(sub, purchase, observed_at, self.policy)
            if owner_id is not None:
                sub.user_id = owner_id
                sub.verification = Verification.VERIFIED
                sub.verified_at = utcnow()
                sub.failure_reason = None
                sub.invoice_id = sub.invoice_id or _first_invoice(purchase.order_id)
            await session.commit()
        _log_state_change(sub, before)

    # --- admin refund ------------------------------------------------------------------------

    async def refund(self, subscription_id: uuid.UUID, actor: audit.Actor) -> Subscription:
        """Refund the subscription's invoice at RuStore, then end access for good (audited).

        A repeat after a crash finds RuStore's "already refunded" and finishes the record.
        """
        async with self.sessions() as session:
            sub = await SubscriptionRepository(session).get(subscription_id)
        if sub is None:
            raise NotFoundError(f"No subscription {subscription_id}")
        if sub.refunded_at is not None:
            return sub
        if not sub.is_verified:
            raise ConflictError("Only a verified subscription can be refunded", code="not_verified")
        if sub.invoice_id is None:
            raise ConflictError(
                "RuStore refunds an invoice, and this subscription's invoice id is unknown:"
                " refund it in the RuStore Console",
                code="invoice_unknown",
            )
        await self._refund_at_rustore(sub.invoice_id, sandbox=sub.sandbox)
        return await self._mark_refunded(sub.id, actor)

    async def _refund_at_rustore(self, invoice_id: int, *, sandbox: bool) -> None:
        try:
            await self.rustore.refund_invoice(invoice_id, sandbox=sandbox)
        except RuStorePermanentError as exc:
            message = exc.rustore_message or str(exc)
            if ALREADY_REFUNDED not in message.lower():
                raise ConflictError(
                    f"RuStore refused the refund: {message}", code="refund_refused"
                ) from exc
        except RuStoreError as exc:
            raise ServiceUnavailableError(
                "RuStore could not be reached to refund; try again", code="rustore_unavailable"
            ) from exc

    async def _mark_refunded(self, subscription_id: uuid.UUID, actor: audit.Actor) -> Subscription:
        async with self.sessions() as session:
            sub = await SubscriptionRepository(session).get(subscription_id, lock=True)
            assert sub is not None
            before = sub.status
            if sub.refunded_at is None:
                sub.refunded_at = utcnow()
                sub.refunded_by = actor.user_id
                sub.status = SubscriptionStatus.REFUNDED
                sub.next_check_at = None
                await audit.record(
                    session, actor=actor, action="subscription.refund",
                    target_type=Target.SUBSCRIPTION, target_id=sub.id,
                    before={"status": before, "refunded_at": None, "invoice_id": sub.invoice_id},
                    after={"status": sub.status, "refunded_at": sub.refunded_at},
                )  # fmt: skip
            await session.commit()
            await session.refresh(sub)  # updated_at is set by the database
        _log_state_change(sub, before)
        log.info("subscription.refunded", subscription_id=str(sub.id), admin_id=str(actor.user_id))
        return sub


def _is_stale(sub: Subscription, purchase: SubscriptionPurchase, observed_at: dt.datetime) -> bool:
    """Asked before the stored answer was, or naming an earlier charge than it did."""
    if sub.observed_at is not None and observed_at < sub.observed_at:
        return True
    sequence = order_sequence(purchase.order_id)
    return sequence is not None and sub.order_sequence is not None and sequence < sub.order_sequence


def _apply(
    sub: Subscription,
    purchase: SubscriptionPurchase,
    observed_at: dt.datetime,
    policy: CheckPolicy,
) -> None:
    now = utcnow()
    derived = derive(purchase, now, refunded=sub.refunded_at is not None)
    upcoming = next_check(derived.status, purchase.expiry_time, sub.dunning_checks, now, policy)
    sub.status = derived.status
    sub.period = derived.period
    sub.started_at = purchase.start_time
    sub.expires_at = purchase.expiry_time
    sub.auto_renewing = purchase.auto_renewing
    sub.payment_state = purchase.payment_state
    sub.cancel_reason = purchase.cancel_reason
    sub.rustore_order_id = purchase.order_id
    sub.order_sequence = order_sequence(purchase.order_id)
    sub.observed_at = observed_at
    sub.rustore = msgspec.to_builtins(purchase)
    sub.next_check_at = upcoming.at
    sub.dunning_checks = upcoming.dunning_checks


def _first_invoice(order_id: str | None) -> int | None:
    """The first charge's orderId is its invoice id; renewals' (`<id>..n`) are not invoices."""
    return int(order_id) if order_id and order_id.isdigit() else None


def _log_state_change(sub: Subscription, before: str | None) -> None:
    """The `subscription.state_changed` event: one line per status change, for whoever
    consumes events (today the logs; a message bus later)."""
    if sub.status == before:
        return
    log.info(
        "subscription.state_changed",
        subscription_id=str(sub.id),
        user_id=str(sub.user_id),
        product_id=sub.product_id,
        **{"from": before, "to": sub.status},
        period=sub.period,
        expires_at=sub.expires_at.isoformat() if sub.expires_at else None,
    )
