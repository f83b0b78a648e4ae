//! Route 53's XML documents and the STS AssumeRoleWithWebIdentity answer.

use serde::Deserialize;

pub(super) const XMLNS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";


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
// Field names are the XML element names in snake case (`rename_all`); lists default to empty.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ErrorResponse {
    pub(super) error: ErrorDetail,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ErrorDetail {
    pub(super) code: String,
    pub(super) message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListHostedZonesByNameResponse {
    pub(super) hosted_zones: HostedZones,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct HostedZones {
    pub(super) hosted_zone: Vec<HostedZone>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct HostedZone {
    pub(super) id: String,
    pub(super) name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListResourceRecordSetsResponse {
    pub(super) resource_record_sets: ResourceRecordSets,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ResourceRecordSets {
    pub(super) resource_record_set: Vec<ResourceRecordSet>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ResourceRecordSet {
    pub(super) name: String,
    pub(super) r#type: String,
    #[serde(default)]
    pub(super) resource_records: Option<ResourceRecords>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ResourceRecords {
    pub(super) resource_record: Vec<ResourceRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ResourceRecord {
    pub(super) value: String,
}

/// The answer to ChangeResourceRecordSets and to GetChange.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ChangeResponse {
    pub(super) change_info: ChangeInfo,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ChangeInfo {
    pub(super) id: String,
    pub(super) status: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct AssumeRoleResponse {
    #[serde(rename = "AssumeRoleWithWebIdentityResult")]
    pub(super) result: AssumeRoleResult,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AssumeRoleResult {
    pub(super) credentials: StsCredentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StsCredentials {
    pub(super) access_key_id: String,
    pub(super) secret_access_key: String,
    pub(super) session_token: String,
}

impl std::fmt::Debug for StsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StsCredentials(..)")
    }
}
