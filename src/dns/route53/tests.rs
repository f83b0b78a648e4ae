//! Route 53 requests and answers.

use super::*;

#[test]
fn change_batches_escape_their_text() {
    let b = change_batch("UPSERT", "_acme-challenge.a.example.", 60, &["\"<v&>\"".into()]);
    assert!(b.contains("<Value>&quot;&lt;v&amp;&gt;&quot;</Value>"), "{b}");
    assert!(b.contains("<Action>UPSERT</Action>"));
    let list: ListResourceRecordSetsResponse = quick_xml::de::from_str(
        r#"<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ResourceRecordSets><ResourceRecordSet><Name>_acme-challenge.a.example.</Name><Type>TXT</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>"one"</Value></ResourceRecord><ResourceRecord><Value>"two"</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems></ListResourceRecordSetsResponse>"#,
    )
    .unwrap();
    let set = &list.resource_record_sets.resource_record_set[0];
    assert_eq!(set.resource_records.as_ref().unwrap().resource_record.len(), 2);
    assert_eq!(host_of("http://127.0.0.1:8282/x"), "127.0.0.1:8282");
}
