#!/usr/bin/env bash
# The soak (tests/soak.rs): 50 clients x 2,000 messages through the real server, nothing lost; minutes. Knobs: SOAK_* (see the test's docs).
cd "$(dirname "$0")/../../.." && exec cargo test -p tcpchat --release --test soak -- --ignored --nocapture "$@"
