#!/bin/sh
# Install Debian's chromium for tests/test_html.py (the HTML report opened in a real
# headless browser). Never fails: where chromium cannot be installed, it says that the
# browser test will be skipped and exits 0. Usable from make and CI:
#     sh scripts/install-chromium.sh
for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null 2>&1; then
        echo "install-chromium: $name is already installed ($(command -v "$name"))"
        exit 0
    fi
done
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: not root or no apt-get here: the HTML browser test will be skipped"
    exit 0
fi
echo "install-chromium: installing Debian's chromium (about a minute)"
if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
       >/dev/null 2>&1; then
    echo "install-chromium: installed $(command -v chromium)"
else
    echo "install-chromium: apt-get could not install chromium: the HTML browser test will be skipped"
fi
exit 0
