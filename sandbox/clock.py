"""The sandbox clock and the time formats RuStore writes.

Sandbox time is real UTC time plus an offset that only grows. Tests jump hours ahead (the 6 h
reversal of unconfirmed purchases, subscription renewals, token expiry) without waiting, while a
client that never touches the clock sees ordinary wall time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

MSK = timezone(timedelta(hours=3), "MSK")


class Clock:
    """Real time plus a forward offset set through the control API."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset_seconds(self) -> float:
        return self._offset.total_seconds()

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        self._offset = timedelta()

    def skew(self, seconds: float) -> None:
        """Set the offset outright, backwards too: a clock that is off, not time passing."""
        self._offset = timedelta(seconds=seconds)


def envelope_time(moment: datetime) -> str:
    """`2023-08-02T10:11:04.655684723+03:00`: RuStore's envelope carries nine fractional digits."""
    local = moment.astimezone(MSK)
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond:06d}000+03:00"


def msk_time(moment: datetime) -> str:
    """`2020-04-29T08:18:03+03:00`: the v2 purchase dates, whole seconds in Moscow time."""
    return moment.astimezone(MSK).replace(microsecond=0).isoformat()


def legacy_time(moment: datetime) -> str:
    """`2023-07-18T14:31:33+03`: the legacy InvoiceInfo writes the offset without minutes."""
    return f"{moment.astimezone(MSK):%Y-%m-%dT%H:%M:%S}+03"


def utc_time(moment: datetime) -> str:
    """`2025-01-01T10:00:00.123Z`: notification times, as in the documented example."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def epoch_millis(moment: datetime) -> str:
    """Google-like subscription times are epoch milliseconds written as strings."""
    return str(int(moment.timestamp() * 1000))
