#!/usr/bin/env bash
# The Vault / OpenBao side of deploy/kubernetes: the policies certvault generates itself, the
# Kubernetes auth method, and one role per service account:
#   certvault-renew  <- service account certvault        (the CronJob), `certvault policy renew`
#   certvault-admin  <- service account certvault-admin  (the init Job), `certvault policy admin`
#
# Run with a Vault token that may write policies and configure auth methods, where `vault`
# (or `bao`) and `certvault` are installed, with the same CERTVAULT_MOUNT / CERTVAULT_PREFIX /
# CERTVAULT_KV_VERSION as the manifests' ConfigMap (the policies name those paths):
#
#   VAULT_ADDR=https://vault.example.com:8200 VAULT_TOKEN=… deploy/kubernetes/vault-setup.sh
#
# Settings (environment):
#   VAULT_CLI        vault or bao (default: whichever is on PATH, vault first)
#   CERTVAULT        the certvault binary (default: certvault)
#   K8S_NAMESPACE    namespace of the service accounts (default: certs, as kustomization.yaml)
#   K8S_HOST         Kubernetes API address Vault calls for TokenReviews
#                    (default: https://kubernetes.default.svc, for a Vault inside the cluster)
#   K8S_CA_CERT      PEM file of the API's CA, for a Vault outside the cluster (a Vault
#                    inside finds its own)
#   K8S_REVIEWER_JWT_FILE  a token allowed to create TokenReviews (optional, Vault outside)
#   AUTH_MOUNT       mount path of the Kubernetes auth method (default: kubernetes)
#   RENEW_NAME       role name for the CronJob (default: certvault-renew, as cronjob.yaml)
#   ADMIN_NAME       role name for the init Job (default: certvault-admin, as job-init.yaml)
#   RENEW_POLICY     policy names (default: the role names)
#   ADMIN_POLICY
#   TOKEN_TTL        TTL of the login tokens (default: 1h; certvault renews and revokes them)
set -euo pipefail

if [[ -z ${VAULT_CLI:-} ]]; then
    VAULT_CLI="$(command -v vault || command -v bao || true)"
    [[ -n $VAULT_CLI ]] || { echo "vault-setup: neither vault nor bao found (set VAULT_CLI)" >&2; exit 1; }
fi
CERTVAULT="${CERTVAULT:-certvault}"
K8S_NAMESPACE="${K8S_NAMESPACE:-certs}"
K8S_HOST="${K8S_HOST:-https://kubernetes.default.svc}"
AUTH_MOUNT="${AUTH_MOUNT:-kubernetes}"
RENEW_NAME="${RENEW_NAME:-certvault-renew}"
ADMIN_NAME="${ADMIN_NAME:-certvault-admin}"
RENEW_POLICY="${RENEW_POLICY:-$RENEW_NAME}"
ADMIN_POLICY="${ADMIN_POLICY:-$ADMIN_NAME}"
TOKEN_TTL="${TOKEN_TTL:-1h}"

log() { printf 'vault-setup: %s\n' "$*" >&2; }

# Policies, exactly as certvault prints them for these settings.
"$CERTVAULT" policy renew | "$VAULT_CLI" policy write "$RENEW_POLICY" -
"$CERTVAULT" policy admin | "$VAULT_CLI" policy write "$ADMIN_POLICY" -
log "policies $RENEW_POLICY and $ADMIN_POLICY written"

# The Kubernetes auth method (once).
mounts="$("$VAULT_CLI" auth list -format=json)"
if [[ $mounts != *"\"$AUTH_MOUNT/\""* ]]; then
    "$VAULT_CLI" auth enable -path="$AUTH_MOUNT" kubernetes
fi
config=(kubernetes_host="$K8S_HOST")
# A Vault outside the cluster: the API's CA, and (optionally) a reviewer token; without one,
# Vault reviews each login with the logging-in pod's own token (that service account then
# needs the system:auth-delegator ClusterRole).
if [[ -n ${K8S_CA_CERT:-} ]]; then
    config+=(kubernetes_ca_cert=@"$K8S_CA_CERT" disable_local_ca_jwt=true)
fi
if [[ -n ${K8S_REVIEWER_JWT_FILE:-} ]]; then
    config+=(token_reviewer_jwt=@"$K8S_REVIEWER_JWT_FILE")
fi
"$VAULT_CLI" write "auth/$AUTH_MOUNT/config" "${config[@]}"

# One role per service account, each with only its policy (and Vault's `default`, which
# lets a login token renew and revoke itself).
"$VAULT_CLI" write "auth/$AUTH_MOUNT/role/$RENEW_NAME" \
    bound_service_account_names=certvault \
    bound_service_account_namespaces="$K8S_NAMESPACE" \
    token_policies="$RENEW_POLICY" token_ttl="$TOKEN_TTL" token_max_ttl=4h
"$VAULT_CLI" write "auth/$AUTH_MOUNT/role/$ADMIN_NAME" \
    bound_service_account_names=certvault-admin \
    bound_service_account_namespaces="$K8S_NAMESPACE" \
    token_policies="$ADMIN_POLICY" token_ttl=15m token_max_ttl=1h
log "auth/$AUTH_MOUNT roles $RENEW_NAME (service account $K8S_NAMESPACE/certvault) and $ADMIN_NAME ($K8S_NAMESPACE/certvault-admin) written"
