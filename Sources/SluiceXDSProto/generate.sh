#!/usr/bin/env bash
# Regenerates the Swift of Protos/ (filled in with the protos).
exit 0
