#!/bin/sh
# Answers with the model it was asked for and the prompt it read on stdin.
printf '[%s] ' "$ROUTEC_MODEL"
cat
