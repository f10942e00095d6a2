//! Register, log in, send and receive over HTTPS and WSS, with a
//! certificate issued by a CA the test makes (rcgen).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use ferrogram_test_support::{marker, person, spawn_app_with, Device, TEST_CA_FILE};

/// A CA (`TEST_CA_FILE`) and a server certificate for 127.0.0.1 and
/// localhost it issued (`cert.pem`, `key.pem`), in `dir`.
fn issue_certificates(dir: &std::path::Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Ferrogram messaging test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join(TEST_CA_FILE), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

#[tokio::test]
async fn messages_travel_over_wss_with_the_configured_ca() {
    let app = spawn_app_with(|c| {
        issue_certificates(&c.data_dir);
        c.tls.cert = Some("cert.pem".into());
        c.tls.key = Some("key.pem".into());
    })
    .await;
    assert!(app.client.addr().tls);
    assert!(app.client.addr().ca_file.is_some());
    // Register, verify and log in over HTTPS; messages over WSS.
    let alice = person(&app, "tlsalice", 0).await;
    let bob = person(&app, "tlsbob", 1).await;
    let a = Device::new(&app, &alice).await;
    let mut b = Device::new(&app, &bob).await;
    assert!(a
        .messenger
        .session()
        .client()
        .base_url()
        .starts_with("https://"));
    let chat = a.messenger.create_direct(bob.id).await.unwrap();
    let text = marker("over-tls");
    let ack = a.send(chat.id, &text).await;
    let got = b.message().await;
    assert_eq!((got.seq, got.text()), (ack.seq, Some(text.as_str())));
    b.send(chat.id, "and back").await;
    let mut a = a;
    assert_eq!(a.message_from_others().await.text(), Some("and back"));
}
