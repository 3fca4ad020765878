"""Scenario 5: RuStore notifications, AES-GCM encrypted, posted at a fixed rate (open loop, so a
slow answer delays the ones scheduled behind it and shows in the latency).

Every notification is new (its own id) and names an invoice Kopilka does not know. The worker is
stopped: this is the ingest path, storing and answering; processing is the pipeline's business.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from bench.context import Context
from bench.load import render
from bench.stack import APP_ID
from core.rustore import WebhookCipher

RATE = 500
CONNECTIONS = 64
INVOICE_BASE = 9_000_000_000_000


def run(ctx: Context) -> None:
    ctx.stack.stop("worker")
    count = int(RATE * (ctx.duration + ctx.warmup))
    cipher = WebhookCipher(ctx.stack.env["RUSTORE_WEBHOOK_KEY"])
    templates = [_notification(cipher, INVOICE_BASE + n) for n in range(count)]
    spec = ctx.spec(templates, CONNECTIONS, rate=float(RATE), total=count)
    ctx.measure("webhooks", f"{RATE}/s open loop", spec)
    ctx.stack.flush_redis()


def _notification(cipher: WebhookCipher, invoice_id: int) -> str:
    sent_at = dt.datetime.now(dt.UTC).isoformat()
    data = {
        "invoice_id": str(invoice_id),
        "purchase_id": f"wh-{invoice_id}",
        "order_id": str(uuid.uuid4()),
        "product_code": "coins_100",
        "status_new": "CONFIRMED",
        "status_old": "PAID",
        "change_status_time": sent_at,
    }
    plaintext = {"app_id": APP_ID, "notification_type": "INVOICE_STATUS", "data": json.dumps(data)}
    envelope = {
        "id": str(uuid.uuid4()),
        "timestamp": sent_at,
        "payload": cipher.encrypt(json.dumps(plaintext).encode()),
    }
    headers = {"Content-Type": "application/json"}
    return render("POST", "/api/webhooks/rustore", headers, json.dumps(envelope).encode())
