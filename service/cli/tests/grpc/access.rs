//! Who may call what: JWT roles, tenants and sites, stored models per
//! tenant across restarts, and TLS.

use tonic::Code;
use tonic::transport::Channel;

use super::{DispatchServiceClient, SECRET, Server, case_json, fpb, pb, token, victoria, with_token};

#[tokio::test]
async fn models_are_stored_by_id_per_tenant_and_auth_rejects_wrong_tokens_and_tenants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("volta.db").display());
    let env = [("VOLTA_JWT_HS256_SECRET", SECRET)];
    let server = Server::start_with(&["--database", &db], &env);
    let exp = 4_000_000_000_u64;
    let acme = token(&serde_json::json!({"sub": "ana", "tenant": "acme", "roles": ["operator"], "exp": exp}));
    let acme_admin = token(&serde_json::json!({"sub": "al", "tenant": "acme", "roles": ["admin"], "exp": exp}));
    let other = token(&serde_json::json!({"sub": "bo", "tenant": "globex", "roles": ["admin"], "exp": exp}));
    let viewer = token(&serde_json::json!({"sub": "vi", "tenant": "acme", "roles": ["viewer"], "exp": exp}));
    let harbour = token(
        &serde_json::json!({"sub": "ha", "tenant": "acme", "roles": ["operator"], "sites": ["harbour"], "exp": exp}),
    );
    let forged = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"not the server's secret, though long enough");
        let claims = serde_json::json!({"sub": "eve", "tenant": "acme", "roles": ["admin"], "exp": exp});
        format!("Bearer {}", jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("sign"))
    };

    let mut dispatch = server.client().await;
    let validate = pb::ValidateRequest { case: Some(case_json("benchmarks/kazarlis10.toml")) };
    let err = dispatch.validate(validate.clone()).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = dispatch.validate(with_token(validate.clone(), &forged)).await.expect_err("forged");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("InvalidSignature"), "{}", err.message());
    dispatch.validate(with_token(validate.clone(), &viewer)).await.expect("a viewer may validate");
    let schedule =
        pb::ScheduleRequest { case: validate.case.clone(), summary_only: true, ..pb::ScheduleRequest::default() };
    let err = dispatch.schedule(with_token(schedule.clone(), &viewer)).await.expect_err("viewer");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = dispatch.schedule(with_token(schedule.clone(), &harbour)).await.expect_err("another site");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("kazarlis10"), "{}", err.message());
    dispatch.schedule(with_token(schedule, &acme)).await.expect("an operator schedules any site");

    let mut client = server.forecaster().await;
    let (series, options_json) = victoria(r#"{"horizon": 48, "model": "linear", "quantiles": [0.1, 0.5, 0.9]}"#);
    let train = fpb::TrainRequest {
        series: Some(series.clone()),
        options_json,
        train_until: "2014-10-31".into(),
        name: "victoria".into(),
    };
    let trained = client.train(with_token(train, &acme)).await.expect("train").into_inner();
    let model = trained.model.expect("model");
    assert_eq!((model.name.as_str(), model.model.as_str(), model.horizon), ("victoria", "linear", 48));
    let forecast = fpb::ForecastRequest {
        model_id: model.id.clone(),
        series: Some(fpb::Series { target: String::new(), ..series }),
        issue_time: "2014-11-05T00:00".into(),
    };
    let reply = client.forecast(with_token(forecast.clone(), &viewer)).await.expect("forecast").into_inner();
    assert_eq!(reply.point.len(), 48);
    assert_eq!(reply.times[0], "2014-11-05T00:00:00+10:00");
    assert_eq!(reply.quantiles.len(), 3);
    for k in 0..48 {
        let (lo, mid, hi) = (reply.quantiles[0].values[k], reply.quantiles[1].values[k], reply.quantiles[2].values[k]);
        assert!(lo <= mid && mid <= hi && (3.0..9.0).contains(&reply.point[k]), "lead {k}: {lo} {mid} {hi}");
    }

    // Another tenant sees nothing of acme's: not its list, not its model.
    let err = client.forecast(with_token(forecast.clone(), &other)).await.expect_err("other tenant");
    assert_eq!(err.code(), Code::NotFound);
    let listed = client.list_models(with_token(fpb::ListModelsRequest {}, &other)).await.expect("list");
    assert!(listed.into_inner().models.is_empty());
    let err = client
        .delete_model(with_token(fpb::DeleteModelRequest { id: model.id.clone() }, &other))
        .await
        .expect_err("other tenant");
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .delete_model(with_token(fpb::DeleteModelRequest { id: model.id.clone() }, &acme))
        .await
        .expect_err("operators do not delete");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Nothing is lost across a restart: the model is still there.
    drop(server);
    let server = Server::start_with(&["--database", &db], &env);
    let mut client = server.forecaster().await;
    let listed = client.list_models(with_token(fpb::ListModelsRequest {}, &viewer)).await.expect("list");
    assert_eq!(listed.into_inner().models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [model.id.as_str()]);
    let again = client.forecast(with_token(forecast.clone(), &acme)).await.expect("forecast").into_inner();
    assert_eq!(again.point, reply.point);
    client
        .delete_model(with_token(fpb::DeleteModelRequest { id: model.id.clone() }, &acme_admin))
        .await
        .expect("delete");
    let err = client.forecast(with_token(forecast, &acme)).await.expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn tls_from_config_serves_https_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).expect("write");
    std::fs::write(&key_file, signing_key.serialize_pem()).expect("write");
    let config = dir.path().join("volta.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"sqlite://{}\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n[log]\nlevel = \"debug\"\n",
            dir.path().join("volta.db").display(),
            cert_file.display(),
            key_file.display()
        ),
    )
    .expect("write");
    let server = Server::start_with(&["--config", config.to_str().expect("utf-8")], &[]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let port = server.url.rsplit(':').next().expect("port");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(cert.pem()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("a TLS connection");
    let mut client = DispatchServiceClient::new(channel);
    let ok = client.validate(pb::ValidateRequest { case: Some(case_json("campus.toml")) }).await.expect("validate");
    assert!(ok.get_ref().ok);
    // Plaintext gRPC gets nowhere.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}")).expect("url").connect().await;
    if let Ok(channel) = plain {
        let err = DispatchServiceClient::new(channel)
            .validate(pb::ValidateRequest { case: Some(case_json("campus.toml")) })
            .await
            .expect_err("plaintext");
        assert_ne!(err.code(), Code::Ok);
    }
}
