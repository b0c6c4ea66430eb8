# The Pub/Sub path: a push subscription of our own on var.pubsub_topic, pushing to the function.
#
# Why not an Eventarc trigger (event_trigger with pubsub_topic) like the Cloud Storage path: Eventarc
# creates and owns the subscription that carries the events (its `subscription` field is output
# only), so neither the Eventarc API nor Terraform can give it a dead-letter policy
# (hashicorp/terraform-provider-google#17697). Patching that subscription by hand is undone
# whenever the trigger is recreated. A push subscription we own can have one, and delivers the same
# thing: the functions framework turns a Pub/Sub push body into the
# google.cloud.pubsub.topic.v1.messagePublished CloudEvent that handle_cloud_event receives (id =
# message id). The topic in the URL path becomes the CloudEvent's source.
#
# Retries: dagtrigger raises on a transient failure, the function answers 500, Pub/Sub redelivers
# with exponential backoff (10 s to 600 s); after max_delivery_attempts the message goes to the
# dead-letter topic, whose own subscription keeps it for dead_letter_retention.

locals {
  pubsub_path     = var.pubsub_topic != null
  pubsub_topic_id = startswith(coalesce(var.pubsub_topic, "-"), "projects/") ? var.pubsub_topic : "projects/${var.project}/topics/${coalesce(var.pubsub_topic, "-")}"
  function_uri    = google_cloudfunctions2_function.dagtrigger.service_config[0].uri
}

resource "google_pubsub_topic" "dead_letter" {
  # Encrypted at rest with a Google-managed key unless var.kms_key_name names a Cloud KMS key.
  count = local.pubsub_path ? 1 : 0

  project                    = var.project
  name                       = "${var.function_name}-dead-letter"
  labels                     = var.labels
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.dead_letter_retention

  depends_on = [google_project_service.apis]
}

# Messages published to a topic without a subscription are lost: this one keeps them.
resource "google_pubsub_subscription" "dead_letter" {
  count = local.pubsub_path ? 1 : 0

  project                    = var.project
  name                       = "${var.function_name}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[0].id
  labels                     = var.labels
  message_retention_duration = var.dead_letter_retention
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = "" # never expires, however long nothing fails
  }
}

resource "google_pubsub_subscription" "push" {
  count = local.pubsub_path ? 1 : 0

  project = var.project
  name    = "${var.function_name}-push"
  topic   = local.pubsub_topic_id
  labels  = var.labels
  # For push, the ack deadline is how long Pub/Sub waits for the function's answer.
  ack_deadline_seconds       = var.timeout_seconds
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${local.function_uri}/${local.pubsub_topic_id}"

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = local.function_uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[0].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.invoker,
    google_service_account_iam_member.pubsub_token_creator,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  count = local.pubsub_path ? 1 : 0

  project = var.project
  topic   = google_pubsub_topic.dead_letter[0].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription_iam_member" "push_subscriber" {
  count = local.pubsub_path ? 1 : 0

  project      = var.project
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
