# notion-es — local stack and tests. See infra/README.md.
#
#   make install   install everything the local stack needs (venvs, OpenSearch jars, cargo-lambda/SAM/cfn-lint)
#   make up        install what is missing, start search engine + LocalStack + emulated Notion (idempotent)
#   make down      stop the services started by these scripts (by PID)
#   make status    health, PID and RSS of each service
#   make test      bring up what is missing, cargo test --workspace, stop what this run started
#   make test-unit the tests that need no server (in-memory ports, in-process emulator): nothing is started
#
# Knobs (environment): NOTION_WORKSPACE=small|medium|large|edge  NOTION_SEED=42  NOTION_EMULATOR_ARGS="..."
#                      SEARCH_HEAP=768m  WORK_VISIBILITY_TIMEOUT=30  STOP_TIMEOUT=30  CARGO_TEST_ARGS="..."

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
SCRIPTS := infra/scripts

.PHONY: help install up down restart status test test-unit demo bench

help:
	@sed -n '3,12p' Makefile | sed 's/^# \{0,1\}//'

install:
	@$(SCRIPTS)/install.sh all

# .local/started-by-make lists the services *this* `make up` started (empty when all were already up)
up:
	@mkdir -p .local && : > .local/started-by-make
	@$(SCRIPTS)/install.sh all
	@NOTION_ES_INSTALLED=1 $(SCRIPTS)/up.sh --record .local/started-by-make

down:
	@$(SCRIPTS)/down.sh
	@rm -f .local/started-by-make

restart: down up

status:
	@$(SCRIPTS)/status.sh

test:
	@$(SCRIPTS)/test.sh

# The test targets that need no server; in a file that mixes both, tests that need the search engine have
# `search_engine` in their name. Everything else (search-engine stores, end-to-end) runs in `make test`.
UNIT_TESTS := --test bulk_bounds --test config_rules --test download_memory --test download_ssrf --test extract \
	--test fuzz_decoders --test fuzz_extract --test notion_client --test webhook_api \
	--test sync_planner --test sync_worker --test sync_reaper \
	--test api --test control --test limits --test misbehaviour

test-unit:
	@cargo test --workspace --lib --bins $(UNIT_TESTS) -- --skip search_engine

# the README's first command: a full sync of the emulated workspace through cargo lambda watch
demo: up
	@$(SCRIPTS)/demo.sh

# figures of ../shared/ARCHITECTURE.md, printed (release build)
bench: up
	@$(SCRIPTS)/bench.sh
