//! The client over HTTPS: the server's certificate is issued by a CA the test
//! makes; the client trusts it through `ServerAddr::ca_file` (on top of the
//! system roots) and refuses the server without it.

use ferrogram_client::{Client, ClientError, ServerAddr};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use ferrogram_test_support::{connect, spawn_app_with, TestApp, TestUser, TEST_CA_FILE};

/// Writes the CA certificate (`TEST_CA_FILE`), `cert.pem` and `key.pem` into `dir`: a CA and a server
/// certificate it issued for 127.0.0.1 and localhost.
pub(crate) fn make_certificates(dir: &std::path::Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Ferrogram test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    server_params
        .distinguished_name
        .push(DnType::CommonName, "ferrogram test server");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

    std::fs::write(dir.join(TEST_CA_FILE), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), server_key.serialize_pem()).unwrap();
}

async fn spawn_tls_app() -> TestApp {
    spawn_app_with(|c| {
        make_certificates(&c.data_dir);
        c.tls.cert = Some("cert.pem".into());
        c.tls.key = Some("key.pem".into());
    })
    .await
}

#[tokio::test]
async fn accounts_work_over_tls_with_a_ca_file() {
    let app = spawn_tls_app().await;
    assert!(app.client.addr().tls);
    let user = TestUser::new("tls");
    app.register(&user).await;
    let code = app.mail_to(&user.email).await.code().unwrap();
    assert!(app
        .mail_to(&user.email)
        .await
        .link()
        .unwrap()
        .starts_with("https://"));
    app.client.verify_code(&user.email, &code).await.unwrap();
    let session = app.login(&user).await;
    assert!(session.me().await.unwrap().verified);
}

#[tokio::test]
async fn an_unknown_ca_or_plain_http_is_refused() {
    let app = spawn_tls_app().await;
    let port = app.server.addr.port();
    // System roots only: the test CA is unknown.
    let err = Client::connect(ServerAddr::new("127.0.0.1", port).with_tls(true))
        .await
        .unwrap_err();
    match &err {
        ClientError::Unreachable { reason, .. } => {
            assert!(
                reason.to_lowercase().contains("certificate") || reason.contains("Unknown"),
                "{reason}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let ca = app.config.data_dir.join(TEST_CA_FILE);
    // Plain HTTP to the TLS port gets no Ferrogram answer.
    assert!(Client::connect(ServerAddr::new("127.0.0.1", port))
        .await
        .is_err());
    // With the CA file it works, also by the name localhost.
    let by_name = ServerAddr::new("localhost", port)
        .with_tls(true)
        .with_ca_file(&ca);
    connect(by_name).await;
}
