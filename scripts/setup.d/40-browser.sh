# Headless Chromium (Debian's package) for the report/ui browser test; sourced by scripts/test.sh.
# Exports CLADE_CHROMIUM with the binary's path. When it cannot be installed the test skips and
# says why (CLADE_CHROMIUM_MISSING holds the reason).

_clade_find_chromium() {
    command -v chromium || command -v chromium-browser || command -v google-chrome || true
}

CLADE_CHROMIUM="$(_clade_find_chromium)"
if [ -z "$CLADE_CHROMIUM" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's chromium for the browser test"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                chromium fonts-dejavu-core >/dev/null; }; then
            export CLADE_CHROMIUM_MISSING="apt-get install chromium failed"
        fi
    else
        export CLADE_CHROMIUM_MISSING="chromium is not installed and apt-get as root is not available"
    fi
    CLADE_CHROMIUM="$(_clade_find_chromium)"
fi
if [ -n "$CLADE_CHROMIUM" ]; then
    export CLADE_CHROMIUM
    echo "chromium: $CLADE_CHROMIUM"
else
    unset CLADE_CHROMIUM
    echo "chromium: not available (${CLADE_CHROMIUM_MISSING:-unknown reason}); the browser test will skip"
fi
unset -f _clade_find_chromium
