"""Idempotency and duplicates (scenarios 1-5), against the running api."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from chaos.audit import audit
from chaos.context import Context, Paid, User
from chaos.scenarios.registry import Verdict, scenario
from core.idempotency.service import KEY_MAX_LENGTH

VERIFY = "/api/payments/verify"
CONCURRENT = 50


def _post(ctx: Context, user: User, body: dict[str, Any], key: str | bytes) -> httpx.Response:
    headers: dict[str, Any] = {**user.headers, "Idempotency-Key": key}
    return ctx.http.post(VERIFY, json=body, headers=headers)


def _rows(ctx: Context, paid: list[Paid]) -> int:
    return int(
        ctx.sql(
            "SELECT count(*) FROM purchases WHERE invoice_id = ANY(:i)",
            i=[p.invoice_id for p in paid],
        )[0][0]
    )


def _messages(ctx: Context, purchase_id: str) -> set[str]:
    """Distinct Dramatiq messages that delivered `purchase.verify` for this purchase."""
    return {
        str(event.get("message_id"))
        for event in ctx.stack.events("worker")
        if event.get("purchase_id") == purchase_id
        and event.get("event") in ("purchase.verify.attempt", "purchase.verify.skipped")
    }


@scenario(1, "idempotency", "Same key and body twice", "repeated request")
def same_key_twice(ctx: Context) -> Verdict:
    [user] = ctx.users(1)
    [paid] = ctx.paid([user], 1)
    request = paid.verify()
    first = _post(ctx, user, request.body, request.key)
    second = _post(ctx, user, request.body, request.key)
    verdict = Verdict()
    verdict.expect(first.status_code == 202, f"first answer {first.status_code}")
    verdict.expect(
        (second.status_code, second.content) == (first.status_code, first.content),
        f"replay differs: {second.status_code} {second.content[:120]!r}",
    )
    verdict.expect(second.headers.get("Idempotent-Replayed") == "true", "replay not marked")
    purchase_id = str(first.json()["id"])
    tally = audit(ctx, paid=[paid], accepted=[purchase_id])
    verdict.expect(_rows(ctx, [paid]) == 1, "more than one purchase row")
    jobs = _messages(ctx, purchase_id)
    verdict.expect(len(jobs) == 1, f"{len(jobs)} jobs for one purchase")
    return verdict.audited(tally)


@scenario(2, "idempotency", "50 concurrent requests, one key", "concurrent duplicates")
def concurrent_same_key(ctx: Context) -> Verdict:
    [user] = ctx.users(1)
    [paid] = ctx.paid([user], 1)
    request = paid.verify()

    async def storm() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=ctx.stack.api_url, timeout=30) as client:
            headers = {**user.headers, "Idempotency-Key": request.key}
            return await asyncio.gather(
                *(client.post(VERIFY, json=request.body, headers=headers) for _ in range(50))
            )

    answers = asyncio.run(storm())
    codes = sorted({a.status_code for a in answers})
    verdict = Verdict(
        details={"answers": {c: sum(a.status_code == c for a in answers) for c in codes}}
    )
    verdict.expect(set(codes) <= {202, 409}, f"answers {codes}")
    bodies = {a.content for a in answers if a.status_code == 202}
    verdict.expect(len(bodies) == 1, f"{len(bodies)} different 202 bodies")
    verdict.expect(_rows(ctx, [paid]) == 1, "more than one purchase row")
    ids = {str(a.json()["id"]) for a in answers if a.status_code == 202}
    return verdict.audited(audit(ctx, paid=[paid], accepted=ids))


@scenario(3, "idempotency", "Same key, other body; malformed keys", "bad keys")
def bad_keys(ctx: Context) -> Verdict:
    [user] = ctx.users(1)
    first, other = ctx.paid([user], 2)
    request = first.verify()
    verdict = Verdict()
    accepted = _post(ctx, user, request.body, request.key)
    changed = _post(ctx, user, other.verify().body, request.key)
    verdict.expect(changed.status_code == 422, f"same key, other body: {changed.status_code}")
    malformed: dict[str, str | bytes] = {
        "empty": "",
        "too long": "k" * (KEY_MAX_LENGTH + 1),
        "control character": "bad\tkey",
        "not ASCII": "ключ".encode(),
    }
    for name, key in malformed.items():
        answer = _post(ctx, user, other.verify().body, key)
        verdict.expect(answer.status_code == 400, f"{name} key: {answer.status_code}")
    verdict.expect(_rows(ctx, [other]) == 0, "a refused request wrote a purchase")
    tally = audit(ctx, paid=[first], accepted=[str(accepted.json()["id"])])
    return verdict.audited(tally)


@scenario(4, "idempotency", "User B sends user A's key", "key reuse across users")
def keys_scoped_per_user(ctx: Context) -> Verdict:
    alice, bob = ctx.users(2)
    [alices] = ctx.paid([alice], 1)
    [bobs] = ctx.paid([bob], 1)
    key = uuid.uuid4().hex
    a = _post(ctx, alice, alices.verify().body, key)
    b = _post(ctx, bob, bobs.verify().body, key)
    verdict = Verdict()
    verdict.expect(
        a.status_code == 202 and b.status_code == 202, f"{a.status_code} {b.status_code}"
    )
    verdict.expect(a.content != b.content, "B received A's stored answer")
    verdict.expect(a.json()["id"] != b.json()["id"], "B got A's purchase")
    ids = [str(a.json()["id"]), str(b.json()["id"])]
    return verdict.audited(audit(ctx, paid=[alices, bobs], accepted=ids))


@scenario(5, "idempotency", "One RuStore purchase under two keys / devices", "double submit")
def one_purchase_two_keys(ctx: Context) -> Verdict:
    users = ctx.users(4)
    paid = ctx.paid(users, ctx.scale(8, 40))
    # Each purchase reported twice at once (two devices), then once more later (a retry).
    answers = ctx.submit([r for p in paid for r in (p.verify(), p.verify())], concurrency=16)
    later = ctx.submit([p.verify() for p in paid])
    verdict = Verdict()
    by_invoice: dict[int, set[str]] = {}
    for request, answer in zip(
        [p for p in paid for _ in (0, 1)] + paid, answers + later, strict=True
    ):
        verdict.expect(answer.status == 202, f"invoice {request.invoice_id}: {answer.status}")
        if answer.status == 202:
            by_invoice.setdefault(request.invoice_id, set()).add(str(answer.body["id"]))
    split = [i for i, ids in by_invoice.items() if len(ids) != 1]
    verdict.expect(not split, f"invoices answered with more than one purchase id: {split}")
    ids = {i for ids in by_invoice.values() for i in ids}
    return verdict.audited(audit(ctx, paid=paid, accepted=ids))
