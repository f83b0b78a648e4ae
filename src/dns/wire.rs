//! Plain DNS queries to one server at a time (no cache, recursion bit chosen by the caller).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_net::client::Client;
use hickory_net::proto::op::{DnsRequestOptions, Query, ResponseCode};
use hickory_net::proto::rr::{Name, RData, Record, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::DnsHandle;

use futures::StreamExt;

/// What one server answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Answer {
    pub fn txt_values(&self, name: &Name) -> Vec<String> {
        self.answers
            .iter()
            .filter(|r| &r.name == name)
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect()
    }

    pub fn cname(&self, name: &Name) -> Option<Name> {
        self.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if &r.name == name => Some(c.0.clone()),
            _ => None,
        })
    }
}

/// Why a server gave no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{server}: {reason}")]
pub struct QueryError {
    pub server: SocketAddr,
    pub reason: String,
}

/// Ask `server` one question over UDP. `recursion` sets the RD bit.
pub async fn query(
    server: SocketAddr,
    qname: &Name,
    rtype: RecordType,
    recursion: bool,
    timeout: Duration,
) -> Result<Answer, QueryError> {
    let err = |reason: String| QueryError { server, reason };
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout))
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let bg = tokio::spawn(bg);
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = recursion;
    options.use_edns = true;
    let mut responses = client.lookup(Query::query(qname.clone(), rtype), options);
    let result = match tokio::time::timeout(timeout, responses.next()).await {
        Err(_) => Err(err(format!("no answer within {}s", timeout.as_secs_f32()))),
        Ok(None) => Err(err("no answer".into())),
        Ok(Some(Err(e))) => Err(err(e.to_string())),
        Ok(Some(Ok(rsp))) => {
            let msg = rsp.into_message();
            Ok(Answer {
                code: msg.metadata.response_code,
                answers: msg.answers,
                authorities: msg.authorities,
                additionals: msg.additionals,
            })
        }
    };
    bg.abort();
    result
}
