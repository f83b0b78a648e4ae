//! Route 53's XML documents and the STS AssumeRoleWithWebIdentity answer.

use serde::Deserialize;

use super::*;

/// `"value"`, as Route 53 wants TXT values.
pub(super) fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(super) fn host_of(base: &str) -> String {
    let rest = base.split_once("://").map(|(_, r)| r).unwrap_or(base);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// The ChangeResourceRecordSets request body, every text escaped.
pub(super) fn change_batch(action: &str, name: &str, ttl: u32, values: &[String]) -> String {
    use quick_xml::escape::escape;
    let records: String = values
        .iter()
        .map(|v| format!("<ResourceRecord><Value>{}</Value></ResourceRecord>", escape(v.as_str())))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="{XMLNS}"><ChangeBatch><Comment>certvault DNS-01 challenge</Comment><Changes><Change><Action>{action}</Action><ResourceRecordSet><Name>{}</Name><Type>TXT</Type><TTL>{ttl}</TTL><ResourceRecords>{records}</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#,
        escape(name)
    )
}

// ---- wire types (Route 53 API 2013-04-01, STS 2011-06-15) ----

#[derive(Debug, Deserialize)]
pub(super) struct ErrorResponse {
    #[serde(rename = "Error")]
    pub(super) error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub(super) struct ErrorDetail {
    #[serde(rename = "Code", default)]
    pub(super) code: String,
    #[serde(rename = "Message", default)]
    pub(super) message: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ListHostedZonesByNameResponse {
    #[serde(rename = "HostedZones")]
    pub(super) hosted_zones: HostedZones,
}

#[derive(Debug, Deserialize)]
pub(super) struct HostedZones {
    #[serde(rename = "HostedZone", default)]
    pub(super) items: Vec<HostedZone>,
}

#[derive(Debug, Deserialize)]
pub(super) struct HostedZone {
    #[serde(rename = "Id")]
    pub(super) id: String,
    #[serde(rename = "Name")]
    pub(super) name: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ListResourceRecordSetsResponse {
    #[serde(rename = "ResourceRecordSets")]
    pub(super) sets: ResourceRecordSets,
}

#[derive(Debug, Deserialize)]
pub(super) struct ResourceRecordSets {
    #[serde(rename = "ResourceRecordSet", default)]
    pub(super) items: Vec<ResourceRecordSet>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ResourceRecordSet {
    #[serde(rename = "Name")]
    pub(super) name: String,
    #[serde(rename = "Type")]
    pub(super) kind: String,
    #[serde(rename = "ResourceRecords", default)]
    pub(super) records: Option<ResourceRecords>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ResourceRecords {
    #[serde(rename = "ResourceRecord", default)]
    pub(super) items: Vec<ResourceRecord>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ResourceRecord {
    #[serde(rename = "Value")]
    pub(super) value: String,
}

/// The answer to ChangeResourceRecordSets and to GetChange.
#[derive(Debug, Deserialize)]
pub(super) struct ChangeResponse {
    #[serde(rename = "ChangeInfo")]
    pub(super) change_info: ChangeInfo,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChangeInfo {
    #[serde(rename = "Id")]
    pub(super) id: String,
    #[serde(rename = "Status")]
    pub(super) status: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct AssumeRoleResponse {
    #[serde(rename = "AssumeRoleWithWebIdentityResult")]
    pub(super) result: AssumeRoleResult,
}

#[derive(Debug, Deserialize)]
pub(super) struct AssumeRoleResult {
    #[serde(rename = "Credentials")]
    pub(super) credentials: StsCredentials,
}

#[derive(Deserialize)]
pub(super) struct StsCredentials {
    #[serde(rename = "AccessKeyId")]
    pub(super) access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    pub(super) secret_access_key: String,
    #[serde(rename = "SessionToken")]
    pub(super) session_token: String,
}

impl std::fmt::Debug for StsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StsCredentials(..)")
    }
}
