"""Queue and process faults (scenarios 6-15): Redis, the api, the workers, RuStore and PostgreSQL
broken under real load, then the audit."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterable
from typing import Any

import asyncpg
import httpx

from chaos.audit import audit, log_count, sweeper_resends
from chaos.context import Context, Paid, User, accepted_ids, statuses
from chaos.scenarios.registry import Verdict, scenario
from core.db import driver_database_url
from core.failpoints import KILLED_EXIT_CODE

STATES = "SELECT state FROM purchases WHERE id::text = ANY(:ids)"
SEND_HANG_SECONDS = 5


def _buy(ctx: Context, count: int, **options: Any) -> tuple[list[User], list[Paid]]:
    users = ctx.users(max(1, count // 4))
    return users, ctx.paid(users, count, **options)


def _no_server_errors(verdict: Verdict, seen: dict[str, int]) -> None:
    errors = {status: n for status, n in seen.items() if status.startswith("5") and status != "503"}
    verdict.expect(not errors, f"server errors answered: {errors}")


@scenario(6, "queue", "Redis stopped while purchases are submitted", "Redis stop/start", ci=True)
def redis_down_during_submissions(ctx: Context) -> Verdict:
    count, outage = ctx.scale(40, 200), ctx.scale(8.0, 60.0)
    _, paid = _buy(ctx, count)
    verdict = Verdict()
    ctx.stack.redis_stop()
    stopped = time.time()
    answers = ctx.submit([p.verify() for p in paid], concurrency=16)
    time.sleep(max(0.0, outage - (time.time() - stopped)))
    ctx.stack.redis_start()
    healed = time.time()
    seen = statuses(answers)
    verdict.expect(seen == {"202": count}, f"not every first answer was 202: {seen}")
    verdict.details["slowest_answer_s"] = max(a.seconds for a in answers)
    verdict.details["outage_s"] = round(healed - stopped, 1)
    tally = audit(ctx, paid=paid, accepted=accepted_ids(answers).values(), heal_at=healed)
    tally.evidence["sweeper_resends"] = sweeper_resends(ctx, since=stopped)
    verdict.expect(tally.evidence["sweeper_resends"] > 0, "the sweeper never re-sent anything")
    return verdict.audited(tally)


@scenario(7, "queue", "API killed after commit, before the enqueue", "SIGKILL api", ci=True)
def api_killed_before_enqueue(ctx: Context) -> Verdict:
    """Redis frozen (SIGSTOP) makes the api hang in the send right after its commit; the api is
    SIGKILLed there. The app retries with the same key and gets the stored 202; the sweeper
    sends what was never queued."""
    count = ctx.scale(6, 20)
    _, paid = _buy(ctx, count)
    verdict = Verdict()
    # Long enough to be caught in the send (the rate limiter's own Redis call fails open first).
    ctx.stack.restart("web", sig=signal.SIGTERM, REDIS_TIMEOUT=str(SEND_HANG_SECONDS))
    ctx.stack.redis_freeze(True)
    load = ctx.start_load([p.verify() for p in paid], concurrency=count, deadline_seconds=120)
    committed = _wait_rows(ctx, paid, count, within=8 * SEND_HANG_SECONDS)  # slow when loaded
    ctx.stack.restart("web")  # SIGKILL mid-send; the new api has the normal Redis timeout
    ctx.stack.redis_freeze(False)
    healed = time.time()
    answers = load.wait()
    verdict.expect(committed == count, f"only {committed}/{count} rows committed before the kill")
    verdict.expect(
        all(a.status == 202 for a in answers), f"answers after the restart: {statuses(answers)}"
    )
    verdict.details["answers"] = statuses(answers)
    tally = audit(ctx, paid=paid, accepted=accepted_ids(answers).values(), heal_at=healed)
    tally.evidence["sweeper_resends"] = sweeper_resends(ctx, since=healed - 1)
    verdict.expect(tally.evidence["sweeper_resends"] > 0, "the sweeper never re-sent anything")
    return verdict.audited(tally)


@scenario(8, "queue", "Message delivered twice (sweeper and original)", "duplicate message")
def message_delivered_twice(ctx: Context) -> Verdict:
    count = ctx.scale(10, 50)
    _, paid = _buy(ctx, count)
    answers = ctx.submit([p.verify() for p in paid])
    ids = accepted_ids(answers).values()
    for purchase_id in ids:  # what a sweep racing the api's own send does
        ctx.send_verify(purchase_id)
    verdict = Verdict()
    tally = audit(ctx, paid=paid, accepted=ids)
    verdict.expect(tally.redeliveries >= count, f"only {tally.redeliveries} second deliveries")
    return verdict.audited(tally)


@scenario(9, "queue", "Redis killed with messages in flight", "SIGKILL Redis + worker", ci=True)
def redis_killed_in_flight(ctx: Context) -> Verdict:
    """The worker is frozen so messages pile up (queued and prefetched), then Redis and the worker
    are SIGKILLed and Redis comes back empty-handed: what survives is redelivered, the rest is
    regenerated from PostgreSQL by the sweeper."""
    count = ctx.scale(30, 150)
    _, paid = _buy(ctx, count)
    ctx.stack.freeze_workers(True)
    answers = ctx.submit([p.verify() for p in paid])
    client = ctx.stack.redis_client()
    queued = int(client.llen("dramatiq:purchases"))
    client.close()
    ctx.stack.redis_kill()
    while ctx.stack.kill_worker() is not None:
        pass
    ctx.stack.redis_start()
    client = ctx.stack.redis_client()
    survived = int(client.llen("dramatiq:purchases"))
    client.flushdb()  # the disk is gone too: everything must come back from PostgreSQL
    client.close()
    ctx.stack.start_worker()
    healed = time.time()
    verdict = Verdict(details={"queued_before_kill": queued, "queued_after_restart": survived})
    tally = audit(ctx, paid=paid, accepted=accepted_ids(answers).values(), heal_at=healed)
    tally.evidence["sweeper_resends"] = sweeper_resends(ctx, since=healed - 1)
    return verdict.audited(tally)


def _failpoint_run(
    ctx: Context, failpoint: str, count: int
) -> tuple[Verdict, list[Paid], list[str], list[str]]:
    """Each purchase meets a worker armed to die at `failpoint`; returns after the deaths, with
    each purchase's state read as its worker died. Read later, an earlier purchase may already
    have been resumed: the scheduler's sweeper re-sends a purchase whose message went quiet (8 s
    here), and the next worker takes it."""
    ctx.stack.stop_workers()
    _, paid = _buy(ctx, count, two_stage=True)
    verdict = Verdict()
    accepted: list[str] = []
    at_crash: list[str] = []
    for purchase in paid:
        doomed = ctx.stack.start_worker(failpoints=failpoint)
        ids = list(accepted_ids(ctx.submit([purchase.verify()])).values())
        code = ctx.stack.reap(doomed)
        verdict.expect(code == KILLED_EXIT_CODE, f"worker at {failpoint} exited with {code}")
        accepted += ids
        at_crash += [row[0] for row in ctx.sql(STATES, ids=ids)]
    return verdict, paid, accepted, at_crash


@scenario(10, "queue", "Worker killed after RuStore confirmed", "failpoint after_confirm", ci=True)
def killed_after_confirm(ctx: Context) -> Verdict:
    count = ctx.scale(2, 6)
    confirms = ctx.counter("/public/*:confirm")
    verdict, paid, accepted, at_crash = _failpoint_run(ctx, "purchase.after_confirm", count)
    verdict.expect(at_crash == ["confirming"] * count, f"states at the crashes: {at_crash}")
    rustore = [ctx.sandbox_purchase(p.invoice_id)["status"] for p in paid]
    verdict.expect(set(rustore) == {"CONFIRMED"}, f"RuStore after the crash: {rustore}")
    ctx.stack.start_worker()
    healed = time.time()
    ctx.stack.requeue_unacked()
    tally = audit(ctx, paid=paid, accepted=accepted, heal_at=healed)
    tally.evidence["confirms_sent"] = confirms.count
    tally.evidence["confirms_refused_as_repeats"] = _refused_confirms(ctx, accepted)
    verdict.expect(confirms.count >= count, f"{confirms.count} confirms for {count} purchases")
    verdict.expect(tally.redeliveries >= count, f"only {tally.redeliveries} redeliveries")
    return verdict.audited(tally)


@scenario(
    11, "queue", "Worker killed after our commit, before the ack", "failpoint after_commit", ci=True
)
def killed_after_commit(ctx: Context) -> Verdict:
    count = ctx.scale(2, 6)
    verdict, paid, accepted, _ = _failpoint_run(ctx, "purchase.after_commit", count)
    credits_at_crash = ctx.sql(
        "SELECT count(*) FROM ledger_entries WHERE source_id = ANY(:ids)", ids=list(accepted)
    )[0][0]
    verdict.expect(credits_at_crash == count, f"{credits_at_crash} credits at the crash")
    reads = [ctx.counter(f"/public/*v2/purchase/{p.invoice_id}") for p in paid]
    ctx.stack.start_worker()
    healed = time.time()
    requeued = ctx.stack.requeue_unacked()

    def skipped() -> int:
        done = "purchase.verify.skipped"
        return sum(log_count(ctx, "worker", done, purchase_id=i) for i in accepted)

    _wait(lambda: skipped() >= count, 30)
    tally = audit(ctx, paid=paid, accepted=accepted, heal_at=healed)
    tally.evidence |= {"requeued": requeued, "skipped": skipped()}
    verdict.expect(skipped() >= count, f"only {skipped()} redeliveries found the purchase done")
    calls = sum(counter.count for counter in reads)
    verdict.expect(calls == 0, f"{calls} RuStore reads after the crash")
    return verdict.audited(tally)


@scenario(
    12, "queue", "RuStore 503s, resets, hangs; retries run out", "sandbox 5xx/hang + proxy", ci=True
)
def rustore_outage(ctx: Context) -> Verdict:
    count, phase = ctx.scale(16, 60), ctx.scale(4.0, 40.0)
    _, paid = _buy(ctx, count)
    verdict = Verdict()
    down = ctx.fault(endpoint="*", errorRate=1)
    confirms = ctx.counter("/public/*:confirm")
    started = time.time()
    load = ctx.start_load([p.verify() for p in paid], rate=count / phase)
    time.sleep(phase)
    ctx.end_fault(down)
    assert ctx.stack.proxy is not None
    ctx.stack.proxy.set_mode("reset")
    time.sleep(phase)
    ctx.stack.proxy.set_mode("drop")
    time.sleep(phase)
    ctx.stack.proxy.set_mode("pass")
    hang = ctx.fault(endpoint="v2_purchase", hangRate=1)
    time.sleep(phase)
    ctx.end_fault(hang)
    healed = time.time()
    answers = load.wait()
    verdict.details["proxy_connections"] = dict(ctx.stack.proxy.connections)
    verdict.details["outage_s"] = round(healed - started, 1)
    tally = audit(ctx, paid=paid, accepted=accepted_ids(answers).values(), heal_at=healed)
    two_stage = sum(p.two_stage for p in paid)
    # A second :confirm RuStore refuses ("must be PAID") is the reconciled path, not a double
    # confirm: two deliveries of one purchase may overlap (a sweep re-send racing a retry).
    refused = _refused_confirms(ctx, accepted_ids(answers).values())
    applied = confirms.count - refused
    tally.evidence |= {"confirms_sent": confirms.count, "confirms_refused_as_repeats": refused}
    verdict.expect(applied == two_stage, f"{applied} confirms applied for {two_stage} purchases")
    verdict.expect(tally.retries > 0, "no retry observed")
    verdict.audited(tally)
    return _retries_run_out(ctx, verdict)


def _retries_run_out(ctx: Context, verdict: Verdict) -> Verdict:
    """RuStore never answers for one purchase: its last attempt marks it failed, with the
    reason, and nothing is credited."""
    _, [paid] = _buy(ctx, 1, two_stage=False)
    ctx.fault(endpoint=f"/public/*v2/purchase/{paid.invoice_id}", errorRate=1)
    [answer] = ctx.submit([paid.verify()])
    purchase_id = str(answer.body["id"])
    ctx.send_verify(purchase_id, max_retries=0)
    tally = audit(ctx, paid=[paid], accepted=[purchase_id], credit=[], within=30)
    shown = ctx.http.get(f"/api/payments/{purchase_id}", headers=paid.user.headers).json()
    verdict.details["exhausted"] = {"status": shown["status"], "reason": shown["failureReason"]}
    verdict.expect(shown["status"] == "failed", f"exhausted purchase is {shown['status']}")
    verdict.expect(bool(shown["failureReason"]), "exhausted purchase has no reason")
    return verdict.audited(tally)


@scenario(13, "queue", "RuStore refuses, reverses, refunds, garbles", "sandbox states + malformed")
def rustore_refusals(ctx: Context) -> Verdict:
    users = ctx.users(2)
    [rejected] = ctx.paid(users, 1, pay=False, two_stage=False)
    ctx.stack.sandbox("POST", f"/purchases/{rejected.invoice_id}/fail", {"status": "REJECTED"})
    [expired] = ctx.paid(users, 1, pay=False, two_stage=False)
    ctx.stack.sandbox("POST", f"/purchases/{expired.invoice_id}/fail", {"status": "EXPIRED"})
    [reversed_] = ctx.paid(users, 1, two_stage=True)
    ctx.stack.sandbox("POST", f"/purchases/{reversed_.invoice_id}/cancel")
    [refunded] = ctx.paid(users, 1, two_stage=False)
    ctx.stack.sandbox("POST", f"/purchases/{refunded.invoice_id}/refund")
    [foreign] = ctx.paid(users, 1, two_stage=False, appId=4242)  # 403 code ERROR
    [garbled] = ctx.paid(users, 1, two_stage=False)
    ctx.fault(endpoint=f"/public/*v2/purchase/{garbled.invoice_id}", malformedRate=1, times=3)
    refused = [rejected, expired, reversed_, refunded, foreign]
    answers = ctx.submit([p.verify() for p in [*refused, garbled]])
    ids = accepted_ids(answers)
    tally = audit(ctx, paid=[*refused, garbled], accepted=ids.values(), credit=[garbled.invoice_id])
    verdict = Verdict()
    rows = ctx.sql(
        "SELECT invoice_id, state, failure_reason, attempts FROM purchases "
        "WHERE invoice_id = ANY(:invoices)",
        invoices=[p.invoice_id for p in refused],
    )
    for invoice_id, state, reason, attempts in rows:
        verdict.expect(state == "rejected" and bool(reason), f"{invoice_id}: {state} ({reason})")
        verdict.expect(attempts <= 3, f"{invoice_id}: {attempts} attempts for a permanent no")
    verdict.details["reasons"] = sorted(str(row[2]) for row in rows)
    workers = [ctx.stack.bench.procs[name].popen.poll() for name in ctx.stack.workers]
    verdict.expect(workers == [None] * len(workers), f"a worker died: {workers}")
    return verdict.audited(tally)


@scenario(14, "queue", "Claimed product/app/amount/user differ from RuStore's", "forged claims")
def forged_claims(ctx: Context) -> Verdict:
    alice, bob = ctx.users(2)
    [other_product] = ctx.paid([alice], 1, two_stage=False, productCode="coins_500")
    [other_app] = ctx.paid([alice], 1, two_stage=False, appId=4243)
    [other_amount] = ctx.paid([alice], 1, two_stage=False, amount=100)
    [alices] = ctx.paid([alice], 1, two_stage=True)
    forged = [other_product, other_app, other_amount]
    answers = ctx.submit([*(p.verify() for p in forged), alices.verify(user=bob)])
    tally = audit(
        ctx, paid=[*forged, alices], accepted=accepted_ids(answers).values(),
        credit=[alices.invoice_id],
    )  # fmt: skip
    verdict = Verdict()
    states = ctx.sql(
        "SELECT state FROM purchases WHERE invoice_id = ANY(:i)", i=[p.invoice_id for p in forged]
    )
    verdict.expect([s[0] for s in states] == ["rejected"] * 3, f"forged claims ended {states}")
    bob_balance = ctx.http.get("/api/points/balance", headers=bob.headers).json()["balance"]
    verdict.expect(bob_balance == 0, f"B, who submitted A's purchase, got {bob_balance} points")
    return verdict.audited(tally)


@scenario(
    15, "queue", "PostgreSQL restarted; row locked; pool exhausted", "pg immediate restart", ci=True
)
def database_faults(ctx: Context) -> Verdict:
    count, span = ctx.scale(30, 120), ctx.scale(6.0, 20.0)
    _, paid = _buy(ctx, count)
    verdict = Verdict()
    load = ctx.start_load([p.verify() for p in paid], rate=count / span, deadline_seconds=120)
    time.sleep(span / 3)
    restarted = time.time()
    ctx.stack.postgres_restart()
    ready = _ready_after(ctx, restarted)
    answers = load.wait()
    seen = statuses(answers)
    verdict.details["answers"] = seen
    verdict.details["api_ready_after_restart_s"] = ready
    _no_server_errors(verdict, seen)
    tally = audit(ctx, paid=paid, accepted=accepted_ids(answers).values(), heal_at=restarted)
    verdict.audited(tally)
    [user] = ctx.users(1)
    ctx.grant([user], 100)
    asyncio.run(_locked_wallet(ctx, user, verdict))
    return verdict


async def _locked_wallet(ctx: Context, user: User, verdict: Verdict) -> None:
    """Another session holds the wallet row: spends fail fast with 503 (the lock timeout), a
    crowd of them exhausts the pool and still gets 503s, and it all recovers on release."""
    locker = await asyncpg.connect(driver_database_url(ctx.stack.env["DATABASE_URL"]))
    crowd = ctx.scale(20, 40)
    async with httpx.AsyncClient(base_url=ctx.stack.api_url, timeout=30) as client:

        async def spend() -> tuple[int, float]:
            started = time.monotonic()
            response = await client.post(
                "/api/points/spend",
                json={"amount": 1, "reason": "chaos"},
                headers={**user.headers, "Idempotency-Key": f"chaos-{time.time_ns()}"},
            )
            return response.status_code, time.monotonic() - started

        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute(
                "SELECT 1 FROM points_accounts WHERE user_id = $1 FOR UPDATE", user.id
            )
            answers = await asyncio.gather(*(spend() for _ in range(crowd)))
            await transaction.rollback()
        finally:
            await locker.close()
        after, _ = await spend()
    codes = sorted({code for code, _ in answers})
    slowest = round(max(seconds for _, seconds in answers), 2)
    verdict.details["locked_wallet"] = {"answers": codes, "slowest_s": slowest, "after": after}
    verdict.expect(codes == [503], f"spends on a locked wallet answered {codes}")
    verdict.expect(slowest < 15, f"a spend on a locked wallet took {slowest}s")
    verdict.expect(after == 200, f"the spend after the release answered {after}")


# --- helpers --------------------------------------------------------------------------------------


def _refused_confirms(ctx: Context, purchase_ids: Iterable[str]) -> int:
    refused = "purchase.confirm.refused"
    return sum(log_count(ctx, "worker", refused, purchase_id=i) for i in purchase_ids)


def _wait_rows(ctx: Context, paid: list[Paid], count: int, within: float) -> int:
    deadline = time.monotonic() + within
    found = 0
    while time.monotonic() < deadline:
        found = ctx.sql(
            "SELECT count(*) FROM purchases WHERE invoice_id = ANY(:i)",
            i=[p.invoice_id for p in paid],
        )[0][0]
        if found >= count:
            break
        time.sleep(0.05)
    return int(found)


def _wait(condition: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def _ready_after(ctx: Context, since: float) -> float | None:
    """Seconds from `since` until the api says ready again."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if ctx.http.get("/health/ready", timeout=2).status_code == 200:
                return round(time.time() - since, 2)
        time.sleep(0.2)
    return None
