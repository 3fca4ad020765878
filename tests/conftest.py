# Order matters: a plugin is listed before any plugin that imports it.
pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.platform",
    "tests.fixtures.accounts",
    "tests.fixtures.purchases",
    "tests.fixtures.points",
    "tests.fixtures.webhooks",
    "tests.fixtures.subscriptions",
    "tests.fixtures.ops",
]
