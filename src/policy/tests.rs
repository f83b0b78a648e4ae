//! Each role covers its commands and no more.

use super::*;

const V2: Layout<'static> = Layout {
    version: KvVersion::V2,
    mount: "secret",
    prefix: "cv",
};

const V1: Layout<'static> = Layout {
    version: KvVersion::V1,
    ..V2
};

/// Capabilities a set of rules grants on an exact path (glob `*` at the end only).
fn granted(rules: &[Rule], path: &str) -> Vec<String> {
    rules
        .iter()
        .filter(|r| match r.path.strip_suffix('*') {
            Some(p) => path.starts_with(p),
            None => r.path == path,
        })
        .flat_map(|r| r.capabilities.iter().map(|c| c.to_string()))
        .collect()
}

/// One of every command's work, on certificate `web`, account `default` and solver `cf`.
fn every_work(web: &CertName) -> Vec<Work<'_>> {
    let account = "default";
    let solver = "cf";
    vec![
        Work::Init { account },
        Work::Issue { account, cert: web },
        Work::List,
        Work::Renew { account },
        Work::DnsAdd { solver },
        Work::DnsList,
        Work::DnsTest { solver },
        Work::DnsRemove { solver },
        Work::Migrate,
        Work::Import,
        Work::Show { cert: web },
        Work::Unlock { cert: web },
        Work::Delete { cert: web },
        Work::Revoke { account, cert: web },
        Work::Account { account },
        Work::Verify,
        Work::Rebuild,
    ]
}

fn check(role: Role, layout: &Layout<'_>, work: Work<'_>) -> Vec<Need> {
    let rules = rules(role, layout, None);
    let needs = needs(work, layout);
    let have = paths(&needs)
        .into_iter()
        .map(|p| {
            let g = granted(&rules, &p);
            (p, g)
        })
        .collect();
    missing(needs, &have)
}

#[test]
fn each_role_covers_its_commands_and_no_more() {
    let web: CertName = "web".parse().unwrap();
    for layout in [V2, V1] {
        let account = "default";
        for work in every_work(&web) {
            assert_eq!(check(Role::Admin, &layout, work), vec![], "{work:?}");
        }
        // renew may read a solver (dns test) but never remove one.
        assert_eq!(
            check(Role::Renew, &layout, Work::DnsTest { solver: "cf" }),
            vec![]
        );
        let denied = check(Role::Renew, &layout, Work::DnsRemove { solver: "cf" });
        assert!(
            denied.iter().any(|n| n.capability == "delete"),
            "{denied:?}"
        );
        assert!(denied.iter().all(|n| n.role == Role::Admin));
        // renew cannot roll over or deactivate the account.
        let work = Work::Account { account };
        let denied = check(Role::Renew, &layout, work);
        assert!(
            denied.iter().any(|n| n.capability == "update")
                && denied.iter().all(|n| n.role == Role::Admin),
            "{work:?}"
        );
        // renew may verify (it reads the records) but not rebuild (no delete).
        let denied = check(Role::Renew, &layout, Work::Rebuild);
        assert!(
            !denied.is_empty() && denied.iter().all(|n| n.capability == "delete"),
            "{denied:?}"
        );
        assert!(!check(Role::Monitor, &layout, Work::Verify).is_empty());
        // renew can show, but not retire or migrate; monitor only lists.
        assert_eq!(
            check(Role::Renew, &layout, Work::Show { cert: &web }),
            vec![]
        );
        for work in [Work::Migrate, Work::Delete { cert: &web }] {
            let denied = check(Role::Renew, &layout, work);
            assert!(
                !denied.is_empty() && denied.iter().all(|n| n.role == Role::Admin),
                "{work:?}"
            );
        }
        assert_eq!(check(Role::Monitor, &layout, Work::List), vec![]);
        for work in [Work::Renew { account }, Work::Show { cert: &web }] {
            assert!(!check(Role::Monitor, &layout, work).is_empty(), "{work:?}");
        }
        let m = rules(Role::Monitor, &layout, None);
        assert!(
            granted(&m, &layout.path(Key::Cert(&web), Api::Data)).is_empty(),
            "monitor reads no key"
        );
        // renew cannot add DNS solvers.
        let denied = check(Role::Renew, &layout, Work::DnsAdd { solver: "cf" });
        assert!(denied.iter().any(|n| n.capability == "create"));
        assert!(denied.iter().all(|n| n.role == Role::Admin));
        assert_eq!(check(Role::Renew, &layout, Work::Renew { account }), vec![]);
        assert_eq!(check(Role::Renew, &layout, Work::List), vec![]);
        let denied = check(Role::Renew, &layout, Work::Init { account });
        assert!(denied.iter().any(|n| n.capability == "create"));
        assert!(denied.iter().all(|n| n.role == Role::Admin));
        let denied = check(
            Role::Renew,
            &layout,
            Work::Issue {
                account,
                cert: &web,
            },
        );
        assert!(denied.iter().any(|n| n.capability == "create"));
        // renew may not write the account or solvers.
        let r = rules(Role::Renew, &layout, None);
        assert_eq!(
            granted(&r, &layout.path(Key::Account("x"), Api::Data)),
            vec!["read"]
        );
        assert_eq!(
            granted(&r, &layout.path(Key::AnySolver, Api::Data)),
            vec!["read"]
        );
    }
}

#[test]
fn reader_reads_one_record() {
    let web: CertName = "web".parse().unwrap();
    let r = rules(Role::Reader, &V2, Some(&web));
    assert_eq!(
        r,
        vec![Rule {
            path: "secret/data/cv/certs/web".into(),
            capabilities: vec!["read"],
            why: r[0].why.clone(),
        }]
    );
    let text = hcl(Role::Reader, &V2, Some(&web));
    assert!(
        text.contains("path \"secret/data/cv/certs/web\" {\n  capabilities = [\"read\"]\n}"),
        "{text}"
    );
    assert!(!text.contains("metadata"), "{text}");
}

#[test]
fn hcl_has_a_comment_per_rule_and_kv_v2_paths() {
    let text = hcl(Role::Renew, &V2, None);
    assert!(text.contains("path \"secret/data/cv/certs/*\""), "{text}");
    assert!(
        text.contains("path \"secret/metadata/cv/certs/\""),
        "{text}"
    );
    assert!(text.contains("path \"sys/capabilities-self\""), "{text}");
    let stanzas = text.matches("\npath ").count();
    let comments = text.matches("\n\n# ").count();
    assert_eq!(stanzas, comments, "{text}");
    let v1 = hcl(
        Role::Renew,
        &Layout {
            version: KvVersion::V1,
            mount: "kv",
            prefix: "cv",
        },
        None,
    );
    assert!(v1.contains("path \"kv/cv/certs/*\""), "{v1}");
    assert!(!v1.contains("/data/"), "{v1}");
}

#[test]
fn root_grants_all_and_deny_wins() {
    let needs = needs(Work::List, &V2);
    let root = paths(&needs)
        .into_iter()
        .map(|p| (p, vec!["root".to_string()]))
        .collect();
    assert!(missing(needs.clone(), &root).is_empty());
    let deny = paths(&needs)
        .into_iter()
        .map(|p| (p, vec!["deny".to_string()]))
        .collect();
    assert_eq!(missing(needs, &deny).len(), 6);
}

/// Printed policies and start-up checks come from one table: for every command, a token
/// holding exactly the policy of the command's role passes its check, on KV v1 and v2, and
/// every missing capability would name that role.
#[test]
fn every_command_passes_with_its_own_roles_policy() {
    let web: CertName = "web".parse().unwrap();
    for layout in [V2, V1] {
        for work in every_work(&web) {
            let needs = needs(work, &layout);
            assert!(!needs.is_empty(), "{work:?} checks nothing");
            let role = needs[0].role;
            assert!(needs.iter().all(|n| n.role == role), "{work:?}");
            assert_eq!(check(role, &layout, work), vec![], "{work:?} as {role}");
        }
    }
}
