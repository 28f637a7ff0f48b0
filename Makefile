# The README's two commands: `make demo` and `make test`. Both bootstrap everything they need (idempotent).
.PHONY: demo test bootstrap up down lint docs

PYTEST_ARGS ?=

bootstrap:
	infra/bootstrap.sh train,dev

demo:
	infra/bootstrap.sh
	.venv/bin/sentimon demo

test:
	infra/bootstrap.sh train,dev
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/python -m pytest $(PYTEST_ARGS)

up:
	infra/bootstrap.sh
	.venv/bin/sentimon up
	.venv/bin/sentimon topics create

down:
	.venv/bin/sentimon down

lint:
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/mypy

docs:
	.venv/bin/python tools/update_readme.py
