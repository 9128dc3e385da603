//! The SDK packages podiam recognises and the oldest release of each that supports a
//! mechanism, with the page that says so. docs/sdk-versions.md lists the same table with its
//! sources (a test in `mod.rs` keeps the two equal).

/// A cloud's SDK package in one language, as the image ships it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Package {
    Boto3,
    Botocore,
    AwsJsV2,
    AwsJsV3,
    AwsJavaV1,
    AwsJavaV2Sts,
    AwsJavaV2Core,
    AwsGoV1,
    AwsGoV2Config,
    AwsGoV2Credentials,
    AzureIdentityPython,
    AzureIdentityJs,
    AzureIdentityJava,
    AzureIdentityGo,
    GoogleAuthPython,
    GoogleAuthJs,
    GoogleAuthJava,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Aws,
    Azure,
    Google,
}

impl Cloud {
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Aws => "AWS",
            Cloud::Azure => "Azure",
            Cloud::Google => "Google",
        }
    }
}

impl Package {
    /// The package as its ecosystem names it.
    pub fn name(self) -> &'static str {
        match self {
            Package::Boto3 => "boto3 (Python)",
            Package::Botocore => "botocore (Python)",
            Package::AwsJsV2 => "aws-sdk (JavaScript v2)",
            Package::AwsJsV3 => "@aws-sdk/client-* (JavaScript v3)",
            Package::AwsJavaV1 => "aws-java-sdk-core (Java v1)",
            Package::AwsJavaV2Sts => "software.amazon.awssdk:sts (Java v2)",
            Package::AwsJavaV2Core => "software.amazon.awssdk:sdk-core (Java v2)",
            Package::AwsGoV1 => "github.com/aws/aws-sdk-go (Go v1)",
            Package::AwsGoV2Config => "github.com/aws/aws-sdk-go-v2/config (Go v2)",
            Package::AwsGoV2Credentials => "github.com/aws/aws-sdk-go-v2/credentials (Go v2)",
            Package::AzureIdentityPython => "azure-identity (Python)",
            Package::AzureIdentityJs => "@azure/identity (JavaScript)",
            Package::AzureIdentityJava => "com.azure:azure-identity (Java)",
            Package::AzureIdentityGo => "github.com/Azure/azure-sdk-for-go/sdk/azidentity (Go)",
            Package::GoogleAuthPython => "google-auth (Python)",
            Package::GoogleAuthJs => "google-auth-library (JavaScript)",
            Package::GoogleAuthJava => "com.google.auth:google-auth-library-oauth2-http (Java)",
        }
    }

    pub fn cloud(self) -> Cloud {
        use Package::*;
        match self {
            Boto3 | Botocore | AwsJsV2 | AwsJsV3 | AwsJavaV1 | AwsJavaV2Sts | AwsJavaV2Core
            | AwsGoV1 | AwsGoV2Config | AwsGoV2Credentials => Cloud::Aws,
            AzureIdentityPython | AzureIdentityJs | AzureIdentityJava | AzureIdentityGo => {
                Cloud::Azure
            }
            GoogleAuthPython | GoogleAuthJs | GoogleAuthJava => Cloud::Google,
        }
    }
}

/// The credential mechanism the pod's SDK must support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (AssumeRoleWithWebIdentity).
    IrsaWebIdentity,
    /// EKS Pod Identity: the container credential provider with
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
    PodIdentity,
    /// AKS: `WorkloadIdentityCredential` (`AZURE_FEDERATED_TOKEN_FILE`).
    AzureWorkloadIdentity,
    /// Workload Identity Federation through an `external_account` configuration file.
    GcpExternalAccount,
    /// GKE's metadata server: every Google auth library reads it.
    GkeMetadataServer,
}

impl Use {
    pub fn describe(self) -> &'static str {
        match self {
            Use::IrsaWebIdentity => "IRSA (web identity token file)",
            Use::PodIdentity => "EKS Pod Identity (container credentials with a token file)",
            Use::AzureWorkloadIdentity => "Azure workload identity (WorkloadIdentityCredential)",
            Use::GcpExternalAccount => "Workload Identity Federation (external_account config)",
            Use::GkeMetadataServer => "GKE Workload Identity (metadata server)",
        }
    }

    pub fn cloud(self) -> Cloud {
        match self {
            Use::IrsaWebIdentity | Use::PodIdentity => Cloud::Aws,
            Use::AzureWorkloadIdentity => Cloud::Azure,
            Use::GcpExternalAccount | Use::GkeMetadataServer => Cloud::Google,
        }
    }
}

pub const IRSA_SOURCE: &str = "https://docs.aws.amazon.com/eks/latest/userguide/iam-roles-for-service-accounts-minimum-sdk.html";
pub const POD_IDENTITY_SOURCE: &str =
    "https://docs.aws.amazon.com/eks/latest/userguide/pod-id-minimum-sdk.html";
pub const GO_V2_CONFIG_SOURCE: &str =
    "https://github.com/aws/aws-sdk-go-v2/blob/main/config/CHANGELOG.md (v1.25.0, 2023-11-14)";
pub const GO_V2_CREDENTIALS_SOURCE: &str =
    "https://github.com/aws/aws-sdk-go-v2/blob/main/credentials/CHANGELOG.md (v1.16.0, 2023-11-14)";
pub const AZURE_SOURCE: &str = "https://learn.microsoft.com/en-us/azure/aks/workload-identity-overview (Azure Identity client libraries: minimum package versions)";
pub const GOOGLE_PYTHON_SOURCE: &str = "https://github.com/googleapis/google-auth-library-python/blob/main/CHANGELOG.md (1.27.0: workload identity federation support)";
pub const GOOGLE_JS_SOURCE: &str = "https://github.com/googleapis/google-auth-library-nodejs/blob/main/CHANGELOG.md (7.0.0: workload identity federation support)";
pub const GOOGLE_JAVA_SOURCE: &str = "https://github.com/googleapis/google-auth-library-java/blob/main/CHANGELOG.md (0.24.0: add workload identity federation support)";

/// The oldest release of `package` supporting `what`, and where that is documented. None:
/// every release does (or the package plays no part in `what`).
pub fn minimum(what: Use, package: Package) -> Option<(&'static str, &'static str)> {
    use Package::*;
    let m = match (what, package) {
        (Use::IrsaWebIdentity, Boto3) => ("1.9.220", IRSA_SOURCE),
        (Use::IrsaWebIdentity, Botocore) => ("1.12.200", IRSA_SOURCE),
        (Use::IrsaWebIdentity, AwsJsV2) => ("2.525.0", IRSA_SOURCE),
        (Use::IrsaWebIdentity, AwsJsV3) => ("3.27.0", IRSA_SOURCE),
        (Use::IrsaWebIdentity, AwsJavaV1) => ("1.12.782", IRSA_SOURCE),
        (Use::IrsaWebIdentity, AwsJavaV2Sts | AwsJavaV2Core) => ("2.10.11", IRSA_SOURCE),
        (Use::IrsaWebIdentity, AwsGoV1) => ("1.23.13", IRSA_SOURCE),
        (Use::PodIdentity, Boto3 | Botocore) => ("1.34.41", POD_IDENTITY_SOURCE),
        (Use::PodIdentity, AwsJsV2) => ("2.1550.0", POD_IDENTITY_SOURCE),
        (Use::PodIdentity, AwsJsV3) => ("3.458.0", POD_IDENTITY_SOURCE),
        (Use::PodIdentity, AwsJavaV1) => ("1.12.746", POD_IDENTITY_SOURCE),
        (Use::PodIdentity, AwsJavaV2Sts | AwsJavaV2Core) => ("2.21.30", POD_IDENTITY_SOURCE),
        (Use::PodIdentity, AwsGoV1) => ("1.47.11", POD_IDENTITY_SOURCE),
        // The docs name the Go v2 release of 2023-11-14; these are its two modules that
        // added the token file and the EKS agent host.
        (Use::PodIdentity, AwsGoV2Config) => ("1.25.0", GO_V2_CONFIG_SOURCE),
        (Use::PodIdentity, AwsGoV2Credentials) => ("1.16.0", GO_V2_CREDENTIALS_SOURCE),
        (Use::AzureWorkloadIdentity, AzureIdentityPython) => ("1.13.0", AZURE_SOURCE),
        (Use::AzureWorkloadIdentity, AzureIdentityJs) => ("3.2.0", AZURE_SOURCE),
        (Use::AzureWorkloadIdentity, AzureIdentityJava) => ("1.9.0", AZURE_SOURCE),
        (Use::AzureWorkloadIdentity, AzureIdentityGo) => ("1.3.0", AZURE_SOURCE),
        (Use::GcpExternalAccount, GoogleAuthPython) => ("1.27.0", GOOGLE_PYTHON_SOURCE),
        (Use::GcpExternalAccount, GoogleAuthJs) => ("7.0.0", GOOGLE_JS_SOURCE),
        (Use::GcpExternalAccount, GoogleAuthJava) => ("0.24.0", GOOGLE_JAVA_SOURCE),
        _ => return None,
    };
    Some(m)
}

/// Every `(use, package, minimum)` row, for the documentation test.
pub fn table() -> Vec<(Use, Package, &'static str)> {
    use Package::*;
    let uses = [
        Use::IrsaWebIdentity,
        Use::PodIdentity,
        Use::AzureWorkloadIdentity,
        Use::GcpExternalAccount,
        Use::GkeMetadataServer,
    ];
    let packages = [
        Boto3,
        Botocore,
        AwsJsV2,
        AwsJsV3,
        AwsJavaV1,
        AwsJavaV2Sts,
        AwsJavaV2Core,
        AwsGoV1,
        AwsGoV2Config,
        AwsGoV2Credentials,
        AzureIdentityPython,
        AzureIdentityJs,
        AzureIdentityJava,
        AzureIdentityGo,
        GoogleAuthPython,
        GoogleAuthJs,
        GoogleAuthJava,
    ];
    uses.iter()
        .flat_map(|u| packages.iter().map(move |p| (*u, *p)))
        .filter_map(|(u, p)| minimum(u, p).map(|(v, _)| (u, p, v)))
        .collect()
}
