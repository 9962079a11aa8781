#!/bin/sh
# Starts Redis with the ACL users of users.acl.in, the passwords taken from the environment
# (REDIS_HELPLINE_PASSWORD, REDIS_ADMIN_PASSWORD) and written only as SHA-256 hashes.
set -eu
: "${REDIS_HELPLINE_PASSWORD:?set REDIS_HELPLINE_PASSWORD (deploy/.env)}"
: "${REDIS_ADMIN_PASSWORD:?set REDIS_ADMIN_PASSWORD (deploy/.env)}"
here=$(dirname "$0")
hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
umask 077
sed -e "s/@HELPLINE_SHA256@/$(hash "$REDIS_HELPLINE_PASSWORD")/" \
    -e "s/@ADMIN_SHA256@/$(hash "$REDIS_ADMIN_PASSWORD")/" \
    "$here/users.acl.in" | grep -v -e '^#' -e '^$' > /data/users.acl
unset REDIS_HELPLINE_PASSWORD REDIS_ADMIN_PASSWORD
exec redis-server "$here/redis.conf" "$@"
