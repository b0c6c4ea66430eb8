# Identities and the least each one needs. No basic role (Owner, Editor, Viewer) anywhere.
#
# | who                              | role                              | on                          | why                                            |
# |----------------------------------|-----------------------------------|-----------------------------|------------------------------------------------|
# | function SA (dagtrigger)         | roles/composer.user               | the Composer project        | Composer API environments.get; the web server  |
# |                                  |                                   |                             | (Composer 1 IAP, Composer 2/3 IAM) needs it too |
# | function SA                      | roles/storage.objectViewer        | the routes bucket, if gs:// | read DAGTRIGGER_ROUTES                         |
# | invoker SA (dagtrigger-invoker)  | roles/run.invoker                 | the function's service      | Eventarc and Pub/Sub push call the function    |
# | invoker SA                       | roles/eventarc.eventReceiver      | the project                 | receive the Cloud Storage events (Eventarc)    |
# | Cloud Storage service agent      | roles/pubsub.publisher            | the project                 | publish object events to Eventarc's topic      |
# | Pub/Sub service agent            | roles/iam.serviceAccountTokenCreator | the invoker SA only      | mint the push/Eventarc OIDC token (projects whose agent predates 2021-04-08) |
# | Pub/Sub service agent            | roles/pubsub.publisher            | the dead-letter topic       | forward undeliverable messages                 |
# | Pub/Sub service agent            | roles/pubsub.subscriber           | the push subscription       | acknowledge what it forwarded                  |
# | build SA (dagtrigger-build)      | roles/cloudbuild.builds.builder   | the project                 | build the function's image (unless var.build_service_account) |

resource "google_service_account" "function" {
  project      = var.project
  account_id   = var.service_account_id
  display_name = "dagtrigger function"
  description  = "Runs the dagtrigger function: reads the Composer environment and calls the Airflow REST API."

  # Every resource that names a service account or a service agent waits for the APIs: the IAM
  # API creates the accounts, and the Pub/Sub agent exists once the Pub/Sub API is on.
  depends_on = [google_project_service.apis]
}

resource "google_service_account" "invoker" {
  project      = var.project
  account_id   = var.invoker_account_id
  display_name = "dagtrigger invoker"
  description  = "Identity Eventarc and the Pub/Sub push subscription invoke the dagtrigger function as."

  depends_on = [google_project_service.apis]
}

# The function's image is built as this account, unless var.build_service_account names another.
resource "google_service_account" "build" {
  count = var.build_service_account == null ? 1 : 0

  project      = var.project
  account_id   = var.build_account_id
  display_name = "dagtrigger build"
  description  = "Cloud Build builds the dagtrigger function's image as this account."

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "builder" {
  count = var.build_service_account == null ? 1 : 0

  project = var.project
  role    = "roles/cloudbuild.builds.builder"
  member  = "serviceAccount:${google_service_account.build[0].email}"
}

locals {
  build_service_account = coalesce(var.build_service_account, try(google_service_account.build[0].email, null))
  pubsub_service_agent  = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# --- the function's own account --------------------------------------------------------------------

resource "google_project_iam_member" "composer_user" {
  count = local.composer_project == null ? 0 : 1

  project = local.composer_project
  role    = "roles/composer.user"
  member  = "serviceAccount:${google_service_account.function.email}"
}

resource "google_storage_bucket_iam_member" "routes_reader" {
  count = local.routes_bucket == null ? 0 : 1

  bucket = local.routes_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.function.email}"
}

# --- who may invoke the function -------------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  project  = var.project
  location = google_cloudfunctions2_function.dagtrigger.location
  # A 2nd gen function runs as the Cloud Run service of the same name.
  name   = google_cloudfunctions2_function.dagtrigger.name
  role   = "roles/run.invoker"
  member = "serviceAccount:${google_service_account.invoker.email}"
}

resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent

  depends_on = [google_project_service.apis]
}

# --- Eventarc (Cloud Storage trigger) --------------------------------------------------------------

resource "google_project_iam_member" "event_receiver" {
  count = var.trigger_bucket == null ? 0 : 1

  project = var.project
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.invoker.email}"
}

data "google_storage_project_service_account" "gcs" {
  count = var.trigger_bucket == null ? 0 : 1

  project = var.project

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "gcs_publisher" {
  count = var.trigger_bucket == null ? 0 : 1

  # Project level: the topic Eventarc creates as its transport has a generated name.
  project = var.project
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs[0].email_address}"
}
