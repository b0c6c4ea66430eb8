output "function_uri" {
  description = "URI of the function's Cloud Run service (run.app); Eventarc and the push subscription call it."
  value       = google_cloudfunctions2_function.dagtrigger.service_config[0].uri
}

output "function_url" {
  description = "The function's cloudfunctions.net URL."
  value       = google_cloudfunctions2_function.dagtrigger.url
}

output "service_account_email" {
  description = "The function's service account: the identity Airflow sees (Composer registers it as accounts.google.com:<oauth2ClientId>)."
  value       = google_service_account.function.email
}

output "invoker_service_account_email" {
  description = "The identity Eventarc and the push subscription invoke the function as."
  value       = google_service_account.invoker.email
}

output "push_subscription" {
  description = "The Pub/Sub push subscription that feeds the function (null without pubsub_topic)."
  value       = one(google_pubsub_subscription.push[*].id)
}

output "dead_letter_topic" {
  description = "Where Pub/Sub messages go after max_delivery_attempts failed deliveries (null without pubsub_topic)."
  value       = one(google_pubsub_topic.dead_letter[*].id)
}

output "dead_letter_subscription" {
  description = "Pull this subscription to read or replay dead-lettered messages (null without pubsub_topic)."
  value       = one(google_pubsub_subscription.dead_letter[*].id)
}

output "source_bucket" {
  description = "Bucket holding the function's source archives."
  value       = google_storage_bucket.source.name
}

output "build_service_account_email" {
  description = "The account Cloud Build builds the function's image as."
  value       = local.build_service_account
}
