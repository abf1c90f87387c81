#!/bin/sh
# Regenerates demo.jfr.gz, a JFR recording of HearthJfrDemo written by the
# JDK's own profiler with its "profile" settings, and demo.summary.txt, the
# totals the JDK's JFR reader finds in it. Needs a JDK (17 or later); the
# tests only read the two files.
#
# Run from this directory: sh record.sh
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
javac -d "$work" HearthJfrDemo.java
java -XX:StartFlightRecording=settings=profile,filename="$work/demo.jfr",dumponexit=true \
    -cp "$work" HearthJfrDemo 4000
java Summarize.java "$work/demo.jfr" > demo.summary.txt
gzip -9 -n -c "$work/demo.jfr" > demo.jfr.gz
ls -l demo.jfr.gz demo.summary.txt
