#!/bin/sh
echo "hello as $(id -un) in $(pwd)"
