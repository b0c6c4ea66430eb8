# dagtrigger on Google Cloud: one Cloud Run function (2nd gen) built from functions/, reached by
#   - an Eventarc trigger for Cloud Storage object finalize events on var.trigger_bucket, and
#   - a Pub/Sub push subscription on var.pubsub_topic with a dead-letter topic (pubsub.tf).
# Both deliver CloudEvents to the same entry point, handle_cloud_event; both retry: a transient
# failure raises, the function answers 500 and the event is redelivered with backoff.

data "google_project" "this" {
  project_id = var.project
}

locals {
  composer_project = var.composer_environment != null ? split("/", var.composer_environment)[1] : var.composer_project
  routes_bucket    = startswith(coalesce(var.routes, "-"), "gs://") ? split("/", trimprefix(coalesce(var.routes, "-"), "gs://"))[0] : null

  # Only the variables that are set: dagtrigger treats an empty value as unset anyway, and an
  # unset one keeps its own default or detection.
  environment = { for name, value in {
    COMPOSER_ENVIRONMENT = var.composer_environment
    AIRFLOW_URL          = var.airflow_url
    AIRFLOW_AUTH         = var.airflow_auth
    IAP_CLIENT_ID        = var.iap_client_id
    AIRFLOW_API_VERSION  = var.airflow_api_version
    DAG_ID               = var.dag_id
    DAGTRIGGER_ROUTES    = var.routes
    DAGTRIGGER_DEADLINE  = tostring(var.deadline_seconds)
  } : name => value if value != null }

  apis = [
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "iamcredentials.googleapis.com",
    "iam.googleapis.com",
  ]
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset(local.apis) : toset([])

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

# --- source ----------------------------------------------------------------------------------------

data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/../../functions"
  output_path = "${path.module}/.build/dagtrigger-source.zip"
  excludes    = ["**/__pycache__/**", "**/*.pyc", "*.egg-info/**", "**/.pytest_cache/**"]
}

resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_62: Holds only source archives that Terraform writes. Who read or changed them is in Cloud Audit Logs, which Google recommends over the legacy usage logs this check asks for; a usage-log bucket would itself need a log bucket.
  project                     = var.project
  name                        = coalesce(var.source_bucket_name, "${var.project}-dagtrigger-source")
  location                    = var.region
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Each deployment writes a new object named after the archive's hash and Terraform deletes the
  # previous one; versioning keeps it 30 days for a rollback.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "source" {
  name   = "dagtrigger-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

# --- the function ----------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "dagtrigger" {
  project     = var.project
  name        = var.function_name
  location    = var.region
  description = "Starts Airflow DAG runs from Cloud Storage and Pub/Sub events (dagtrigger)."
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = "handle_cloud_event"
    service_account = "projects/${var.project}/serviceAccounts/${local.build_service_account}"

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory               = var.memory
    timeout_seconds                = var.timeout_seconds
    max_instance_count             = var.max_instances
    min_instance_count             = var.min_instances
    service_account_email          = google_service_account.function.email
    environment_variables          = local.environment
    all_traffic_on_latest_revision = true

    # One event per instance (the only choice below one vCPU): max_instances is then the bound
    # on the events in flight at Airflow.
    max_instance_request_concurrency = 1

    # Eventarc and Pub/Sub push in the same project count as internal traffic; nothing else
    # needs to reach the function, and every request must also carry a token of the invoker.
    ingress_settings              = "ALLOW_INTERNAL_ONLY"
    vpc_connector                 = var.vpc_connector
    vpc_connector_egress_settings = var.vpc_connector == null ? null : var.vpc_connector_egress_settings
  }

  dynamic "event_trigger" {
    for_each = var.trigger_bucket == null ? [] : [var.trigger_bucket]
    content {
      trigger_region        = coalesce(var.trigger_region, var.region)
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.invoker.email

      event_filters {
        attribute = "bucket"
        value     = event_trigger.value
      }
    }
  }

  lifecycle {
    precondition {
      condition     = (var.composer_environment == null) != (var.airflow_url == null)
      error_message = "Set exactly one of composer_environment and airflow_url."
    }
    precondition {
      condition     = var.dag_id != null || var.routes != null
      error_message = "Set dag_id, routes, or both."
    }
    precondition {
      condition     = var.trigger_bucket != null || var.pubsub_topic != null
      error_message = "Set trigger_bucket, pubsub_topic, or both: without either nothing reaches the function."
    }
    precondition {
      condition     = var.deadline_seconds < var.timeout_seconds
      error_message = "deadline_seconds must be below timeout_seconds, so that dagtrigger gives up and the event is redelivered before the platform kills the request."
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.event_receiver,
    google_project_iam_member.gcs_publisher,
    google_project_iam_member.builder,
  ]
}
