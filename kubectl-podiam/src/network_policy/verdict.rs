//! What the NetworkPolicies say about one connection, and which policies and rules say it.

use std::fmt;

/// A NetworkPolicy, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyRef {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One egress rule: `spec.egress[index]` (0-based) of a policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleRef {
    pub policy: PolicyRef,
    pub index: usize,
}

impl fmt::Display for RuleRef {
    /// Rules are counted from 1 in messages, as a reader counts them in the YAML.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "egress rule {} of NetworkPolicy {}",
            self.index + 1,
            self.policy
        )
    }
}

/// A rule whose ports match but whose peers cannot be decided with what is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndecidedRule {
    pub rule: RuleRef,
    /// What would decide it, e.g. `ipBlock 0.0.0.0/0 except 169.254.169.254/32`,
    /// `the labels of namespace kube-system`.
    pub needs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressVerdict {
    /// No policy selecting the pod has Egress in its policyTypes: all egress is allowed.
    NotIsolated,
    /// The pod is isolated for egress and these rules allow the connection.
    Allowed { by: Vec<RuleRef> },
    /// The pod is isolated for egress by these policies and no rule allows the connection.
    Blocked { isolating: Vec<PolicyRef> },
    /// Isolated, no rule allows it for certain, and these rules would decide with the
    /// destination's address (or a namespace's labels) known.
    Undetermined {
        reason: String,
        isolating: Vec<PolicyRef>,
        rules: Vec<UndecidedRule>,
    },
    /// The NetworkPolicies could not be read (e.g. RBAC): nothing can be said.
    Unreadable { reason: String },
}

impl EgressVerdict {
    pub fn is_blocked(&self) -> bool {
        matches!(self, EgressVerdict::Blocked { .. })
    }

    /// Not isolated, or allowed by a rule.
    pub fn is_allowed(&self) -> bool {
        matches!(
            self,
            EgressVerdict::NotIsolated | EgressVerdict::Allowed { .. }
        )
    }

    /// One sentence for messages, naming the policies and rules.
    pub fn describe(&self) -> String {
        match self {
            EgressVerdict::NotIsolated => "no NetworkPolicy selects the pod for egress".into(),
            EgressVerdict::Allowed { by } => format!("allowed by {}", list(by)),
            EgressVerdict::Blocked { isolating } => {
                let (noun, verb) = if isolating.len() == 1 {
                    ("NetworkPolicy", "selects")
                } else {
                    ("NetworkPolicies", "select")
                };
                format!(
                    "blocked: {noun} {} {verb} the pod for egress and no egress rule of a policy selecting it allows this",
                    list(isolating)
                )
            }
            EgressVerdict::Undetermined { reason, .. } => reason.clone(),
            EgressVerdict::Unreadable { reason } => reason.clone(),
        }
    }
}

/// `a, b and c`.
pub(crate) fn list<T: fmt::Display>(items: &[T]) -> String {
    let texts: Vec<String> = items.iter().map(ToString::to_string).collect();
    match texts.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}
