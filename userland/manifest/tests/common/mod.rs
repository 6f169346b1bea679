//! What the checker's tests share: a complete `[security.*]` policy that compiles.

/// The policy of system.toml with no services allowed, for manifests that bring none of
/// their own (appended after the case's body, so its line numbers stay where they were).
pub const POLICY: &str = r#"
[security.hardware]
secure_boot = false
tpm_enabled = false
memory_encryption = false

[security.process]
aslr = true
dep = true
stack_protector = true

[security.network]
firewall = false
encrypted_protocols_only = false
secure_dns = false

[security.ai]
model_validation = false
secure_inference = true
data_encryption = false

[security.sandbox]
network = false
max_priority = 10
max_cpu_percent = 20
max_memory_quota = 1000
max_heap_pages = 64
allowed_services = []
"#;

/// `body` with [`POLICY`] after it, unless it brings its own `[security.*]`.
#[allow(dead_code, reason = "not every test file that shares this module appends the policy")]
pub fn with_policy(body: &str) -> String {
    if body.contains("[security") { body.to_string() } else { format!("{body}{POLICY}") }
}
