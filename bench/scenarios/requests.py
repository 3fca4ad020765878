"""Request templates shared by scenarios: what an app sends, rendered once before the clock."""

from __future__ import annotations

import json

from bench.load import MARKER, render
from bench.seed import PRODUCT

COUNTER = MARKER.decode()


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def json_post(token: str, key: str) -> dict[str, str]:
    """Headers of an authenticated JSON write under an Idempotency-Key."""
    return bearer(token, **{"Idempotency-Key": key, "Content-Type": "application/json"})


def verify(token: str) -> str:
    """A submit of a purchase no one reported before: invoice, purchase id and key all unique."""
    body = f'{{"purchaseId":"b{COUNTER}","invoiceId":1{COUNTER},"productId":"{PRODUCT}"}}'
    headers = bearer(
        token, **{"Idempotency-Key": f"k{COUNTER}", "Content-Type": "application/json"}
    )
    return render("POST", "/api/payments/verify", headers, body.encode())


def verify_paid(token: str, invoice_id: int, purchase_id: str, order_id: str) -> str:
    """A submit of a purchase paid in the sandbox, as the app reports it after the sheet."""
    body = json.dumps(
        {
            "purchaseId": purchase_id,
            "invoiceId": invoice_id,
            "productId": PRODUCT,
            "orderId": order_id,
        }
    )
    headers = bearer(
        token, **{"Idempotency-Key": f"k{COUNTER}", "Content-Type": "application/json"}
    )
    return render("POST", "/api/payments/verify", headers, body.encode())


def floor_accept() -> str:
    body = f'{{"purchaseId":"b{COUNTER}","invoiceId":1{COUNTER},"productId":"{PRODUCT}"}}'
    return render("POST", "/accept", {"Content-Type": "application/json"}, body.encode())
