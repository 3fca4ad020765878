"""The ops dashboard: server-rendered pages under /ops for the `support` and `admin` roles.

Served by the api itself (Litestar templates, a little plain JavaScript, no front-end build);
see docs/dashboard.md. Browsers log in with a form and carry a server-side session cookie; the
bearer-token api under /api is untouched by it.
"""
