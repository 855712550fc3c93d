//! Who may call what: JWT roles, tenants and sites, stored models per
//! tenant across restarts, and TLS.

use tonic::Code;
use tonic::transport::Channel;

use super::{
    DispatchServiceClient, SECRET, Server, at, case_json, fpb, model, pb, reason, token, victoria,
    victoria_train_until, with_token,
};

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
    assert_eq!(reason(&err), "UNAUTHENTICATED");
    let err = dispatch.validate(with_token(validate.clone(), &forged)).await.expect_err("forged");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("InvalidSignature"), "{}", err.message());
    dispatch.validate(with_token(validate.clone(), &viewer)).await.expect("a viewer may validate");
    let schedule = pb::ScheduleRequest {
        case: validate.case.clone(),
        view: pb::ScheduleView::Summary.into(),
        ..pb::ScheduleRequest::default()
    };
    let err = dispatch.schedule(with_token(schedule.clone(), &viewer)).await.expect_err("viewer");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "ROLE_REQUIRED");
    let err = dispatch.schedule(with_token(schedule.clone(), &harbour)).await.expect_err("another site");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "SITE_NOT_GRANTED");
    assert!(err.message().contains("kazarlis10"), "{}", err.message());
    dispatch.schedule(with_token(schedule, &acme)).await.expect("an operator schedules any site");

    let mut client = server.forecaster().await;
    let options = fpb::ModelOptions { quantiles: vec![0.1, 0.5, 0.9], ..model(fpb::ModelKind::Linear) };
    let train = fpb::TrainRequest {
        series: Some(victoria()),
        options: Some(options),
        train_until: Some(victoria_train_until()),
        display_name: "victoria".into(),
        request_id: String::new(),
    };
    let trained = client.train(with_token(train, &acme)).await.expect("train").into_inner();
    let model = trained.model.expect("model");
    assert_eq!(
        (model.display_name.as_str(), model.kind(), model.horizon_steps),
        ("victoria", fpb::ModelKind::Linear, 48)
    );
    assert!(model.name.starts_with("tenants/acme/models/"), "{}", model.name);
    assert_eq!(model.trained_until, Some(victoria_train_until()));
    let forecast = fpb::ForecastRequest {
        model: model.name.clone(),
        series: Some(fpb::SeriesData { target: String::new(), ..victoria() }),
        issue_time: Some(at("2014-11-05T00:00:00+10:00")),
    };
    let reply = client.forecast(with_token(forecast.clone(), &viewer)).await.expect("forecast").into_inner();
    assert_eq!(reply.point.len(), 48);
    let grid = reply.grid.expect("grid");
    assert_eq!(
        (grid.start, grid.steps, grid.time_zone.as_str()),
        (Some(at("2014-11-05T00:00:00+10:00")), 48, "Australia/Brisbane")
    );
    assert_eq!(reply.quantiles.len(), 3);
    for k in 0..48 {
        let (lo, mid, hi) = (reply.quantiles[0].values[k], reply.quantiles[1].values[k], reply.quantiles[2].values[k]);
        assert!(lo <= mid && mid <= hi && (3.0..9.0).contains(&reply.point[k]), "lead {k}: {lo} {mid} {hi}");
    }
    let got = client
        .get_model(with_token(fpb::GetModelRequest { name: model.name.clone() }, &viewer))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.model.as_ref(), Some(&model));

    // Another tenant sees nothing of acme's: not its list, not its model,
    // even by naming it.
    let err = client.forecast(with_token(forecast.clone(), &other)).await.expect_err("other tenant");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "MODEL_NOT_FOUND");
    let listed = client.list_models(with_token(fpb::ListModelsRequest::default(), &other)).await.expect("list");
    assert!(listed.into_inner().models.is_empty());
    let delete = fpb::DeleteModelRequest { name: model.name.clone() };
    let err = client.delete_model(with_token(delete.clone(), &other)).await.expect_err("other tenant");
    assert_eq!(err.code(), Code::NotFound);
    let err = client.delete_model(with_token(delete.clone(), &acme)).await.expect_err("operators do not delete");
    assert_eq!(err.code(), Code::PermissionDenied);
    // A required name is INVALID_ARGUMENT, not NOT_FOUND.
    let err = client
        .forecast(with_token(fpb::ForecastRequest { model: String::new(), ..forecast.clone() }, &acme))
        .await
        .expect_err("no model");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::InvalidArgument, "INVALID_FIELD"));

    // Nothing is lost across a restart: the model is still there.
    drop(server);
    let server = Server::start_with(&["--database", &db], &env);
    let mut client = server.forecaster().await;
    let listed = client.list_models(with_token(fpb::ListModelsRequest::default(), &viewer)).await.expect("list");
    assert_eq!(listed.into_inner().models, std::slice::from_ref(&model));
    let again = client.forecast(with_token(forecast.clone(), &acme)).await.expect("forecast").into_inner();
    assert_eq!(again.point, reply.point);
    client.delete_model(with_token(delete, &acme_admin)).await.expect("delete");
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
