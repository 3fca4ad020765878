"""The product catalogue: what can be bought in the app and what each product grants."""
