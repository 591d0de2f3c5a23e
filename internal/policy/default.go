package policy

// DefaultPolicy is the text of the "default" policy the server installs and
// attaches to every token unless told not to. It is Vault's default policy
// cut down to the endpoints coffer serves: a token can look itself up,
// renew and revoke itself, ask for its own capabilities, use its cubbyhole,
// wrap, look up and unwrap response-wrapping tokens, renew and look up
// leases, and list the mounts it can use. (Vault's rules for identity
// entities, OIDC providers, control groups and sys/tools are left out; so is
// sys/wrapping/rewrap, as in Vault.)
const DefaultPolicy = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies (for UIs)
path "sys/internal/ui/resultant-acl" {
  capabilities = ["read"]
}

# Allow a token to list the mounts it has access to (for UIs and the CLI)
path "sys/internal/ui/mounts" {
  capabilities = ["read"]
}

path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body
path "sys/renew" {
  capabilities = ["update"]
}

path "sys/leases/renew" {
  capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID
# ahead of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
  capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}
`
