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
    assert_eq!(list.sets.items[0].records.as_ref().unwrap().items.len(), 2);
    assert_eq!(host_of("http://127.0.0.1:8282/x"), "127.0.0.1:8282");
}
