//! AWS partitions as the endpoint rulesets' `aws.partition` function sees them: a region named
//! in a partition's region list belongs to it, else the first partition whose region regex
//! matches, else `aws`. Data from botocore's `botocore/data/partitions.json` (1.43.67).

use std::sync::LazyLock;

use regex::Regex;

/// One partition's outputs that the STS ruleset uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: &'static str,
    pub dns_suffix: &'static str,
    pub dual_stack_dns_suffix: &'static str,
    // Every partition in partitions.json supports both today; kept so the rules read as
    // the ruleset does.
    pub supports_fips: bool,
    pub supports_dual_stack: bool,
}

struct Entry {
    partition: Partition,
    region_regex: &'static str,
    regions: &'static [&'static str],
}

const fn partition(name: &'static str, dns: &'static str, dual: &'static str) -> Partition {
    Partition {
        name,
        dns_suffix: dns,
        dual_stack_dns_suffix: dual,
        supports_fips: true,
        supports_dual_stack: true,
    }
}

// Explicit regions matter only where the regex would not match them (the `*-global`
// pseudo-regions); the regexes cover the rest.
static ENTRIES: &[Entry] = &[
    Entry {
        partition: partition("aws", "amazonaws.com", "api.aws"),
        region_regex: r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$",
        regions: &["aws-global"],
    },
    Entry {
        partition: partition("aws-cn", "amazonaws.com.cn", "api.amazonwebservices.com.cn"),
        region_regex: r"^cn\-\w+\-\d+$",
        regions: &["aws-cn-global"],
    },
    Entry {
        partition: partition("aws-eusc", "amazonaws.eu", "api.amazonwebservices.eu"),
        region_regex: r"^eusc\-(de)\-\w+\-\d+$",
        regions: &[],
    },
    Entry {
        partition: partition("aws-iso", "c2s.ic.gov", "api.aws.ic.gov"),
        region_regex: r"^us\-iso\-\w+\-\d+$",
        regions: &["aws-iso-global"],
    },
    Entry {
        partition: partition("aws-iso-b", "sc2s.sgov.gov", "api.aws.scloud"),
        region_regex: r"^us\-isob\-\w+\-\d+$",
        regions: &["aws-iso-b-global"],
    },
    Entry {
        partition: partition("aws-iso-e", "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"),
        region_regex: r"^eu\-isoe\-\w+\-\d+$",
        regions: &["aws-iso-e-global"],
    },
    Entry {
        partition: partition("aws-iso-f", "csp.hci.ic.gov", "api.aws.hci.ic.gov"),
        region_regex: r"^us\-isof\-\w+\-\d+$",
        regions: &["aws-iso-f-global"],
    },
    Entry {
        partition: partition("aws-us-gov", "amazonaws.com", "api.aws"),
        region_regex: r"^us\-gov\-\w+\-\d+$",
        regions: &["aws-us-gov-global"],
    },
];

static REGEXES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    ENTRIES
        .iter()
        .map(|e| Regex::new(e.region_regex).expect("partition regexes are valid"))
        .collect()
});

/// The partition a region belongs to, as `aws.partition(Region)` resolves it.
pub fn partition_of(region: &str) -> &'static Partition {
    if let Some(entry) = ENTRIES.iter().find(|e| e.regions.contains(&region)) {
        return &entry.partition;
    }
    if let Some((entry, _)) = ENTRIES
        .iter()
        .zip(REGEXES.iter())
        .find(|(_, re)| re.is_match(region))
    {
        return &entry.partition;
    }
    &ENTRIES[0].partition
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_find_their_partition() {
        assert_eq!(partition_of("us-east-1").name, "aws");
        assert_eq!(partition_of("aws-global").name, "aws");
        assert_eq!(partition_of("cn-north-1").name, "aws-cn");
        assert_eq!(partition_of("cn-north-1").dns_suffix, "amazonaws.com.cn");
        assert_eq!(partition_of("us-gov-west-1").name, "aws-us-gov");
        assert_eq!(partition_of("us-iso-east-1").name, "aws-iso");
        assert_eq!(partition_of("us-isob-east-1").name, "aws-iso-b");
        assert_eq!(partition_of("eusc-de-east-1").name, "aws-eusc");
    }

    #[test]
    fn unknown_regions_fall_back_to_aws() {
        assert_eq!(partition_of("moon-base-1").name, "aws");
        assert_eq!(partition_of("local").dns_suffix, "amazonaws.com");
    }
}
