# Inputs of the dagtrigger deployment. Only `project`, the Airflow target (composer_environment or
# airflow_url), what to trigger (dag_id or routes) and at least one event source (trigger_bucket or
# pubsub_topic) must be set; everything else has a working default.

# --- where -----------------------------------------------------------------------------------------

variable "project" {
  description = "Project ID the function, its service accounts, the push subscription and the dead-letter topic are created in."
  type        = string
}

variable "region" {
  description = "Region of the function and of the source bucket, e.g. europe-west1."
  type        = string
  default     = "us-central1"
}

variable "enable_apis" {
  description = "Enable the APIs the deployment uses (Cloud Functions, Cloud Run, Cloud Build, Artifact Registry, Eventarc, Pub/Sub, IAM Credentials). They are never disabled on destroy."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels put on every resource that takes labels."
  type        = map(string)
  default     = { app = "dagtrigger" }
}

# --- the Airflow to trigger ------------------------------------------------------------------------

variable "composer_environment" {
  description = "Full name of the Cloud Composer environment, projects/P/locations/L/environments/E. dagtrigger reads its web server URL and Airflow version from the Composer API. Set this or airflow_url, not both."
  type        = string
  default     = null

  validation {
    condition     = var.composer_environment == null ? true : can(regex("^projects/[^/]+/locations/[^/]+/environments/[^/]+$", var.composer_environment))
    error_message = "composer_environment must look like projects/PROJECT/locations/REGION/environments/NAME (gcloud composer environments describe NAME --location REGION --format='value(name)')."
  }
}

variable "airflow_url" {
  description = "Base URL of the Airflow web server (no /api/...), for an Airflow that is not reached through composer_environment. Set this or composer_environment, not both."
  type        = string
  default     = null

  validation {
    condition     = var.airflow_url == null ? true : can(regex("^https?://[^/]+", var.airflow_url))
    error_message = "airflow_url must be an http(s) URL, e.g. https://airflow.example.com."
  }
}

variable "composer_project" {
  description = "Project of the Composer environment, when airflow_url points at one (it gets roles/composer.user for the function). Derived from composer_environment when that is set; leave null for an Airflow outside Composer."
  type        = string
  default     = null
}

variable "airflow_auth" {
  description = "AIRFLOW_AUTH: \"google\" (Composer 2/3, a Google access token) or \"iap\" (Composer 1 or any IAP-protected Airflow, an ID token). null lets dagtrigger detect it."
  type        = string
  default     = null

  validation {
    condition     = var.airflow_auth == null ? true : contains(["google", "iap"], var.airflow_auth)
    error_message = "airflow_auth must be \"google\", \"iap\" or null."
  }
}

variable "iap_client_id" {
  description = "IAP_CLIENT_ID: OAuth client ID of the IAP in front of a Composer 1 web server. Optional: dagtrigger reads it from the redirect IAP answers an unauthenticated request with."
  type        = string
  default     = null
}

variable "airflow_api_version" {
  description = "AIRFLOW_API_VERSION: \"v1\" (Airflow 2) or \"v2\" (Airflow 3). null: detected once per instance, at the cost of one request at cold start."
  type        = string
  default     = null

  validation {
    condition     = var.airflow_api_version == null ? true : contains(["experimental", "v1", "v2"], var.airflow_api_version)
    error_message = "airflow_api_version must be \"experimental\", \"v1\", \"v2\" or null."
  }
}

# --- what to trigger -------------------------------------------------------------------------------

variable "dag_id" {
  description = "DAG_ID: the DAG every event starts; with routes, the DAG of routes that name none."
  type        = string
  default     = null
}

variable "routes" {
  description = "DAGTRIGGER_ROUTES: routing rules as inline JSON, or a gs://bucket/object URL (the function then gets roles/storage.objectViewer on that bucket)."
  type        = string
  default     = null
}

variable "deadline_seconds" {
  description = "DAGTRIGGER_DEADLINE: seconds dagtrigger retries one trigger inside one invocation before it raises and the event is redelivered. Must be below timeout_seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.deadline_seconds > 0 && var.deadline_seconds < 3600
    error_message = "deadline_seconds must be between 0 and 3600."
  }
}

# --- event sources ---------------------------------------------------------------------------------

variable "trigger_bucket" {
  description = "Cloud Storage bucket whose finalized objects (google.cloud.storage.object.v1.finalized) start DAG runs, through an Eventarc trigger. null: no Cloud Storage trigger."
  type        = string
  default     = null
}

variable "trigger_region" {
  description = "Location of the Eventarc trigger for trigger_bucket; it must match the bucket's location (a region such as europe-west1, or us / eu / asia for multi-region buckets). null: region."
  type        = string
  default     = null
}

variable "pubsub_topic" {
  description = "Pub/Sub topic (name in project, or projects/P/topics/T) whose messages start DAG runs, through a push subscription with a dead-letter topic. null: no Pub/Sub path."
  type        = string
  default     = null
}

variable "max_delivery_attempts" {
  description = "Deliveries of one Pub/Sub message before it goes to the dead-letter topic (5 to 100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "dead_letter_retention" {
  description = "How long the dead-letter subscription keeps undelivered messages (at most 7 days)."
  type        = string
  default     = "604800s"
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for the dead-letter topic. null: Google-managed encryption. The Pub/Sub service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  type        = string
  default     = null
}

# --- the function ----------------------------------------------------------------------------------

variable "function_name" {
  description = "Name of the Cloud Run function (2nd gen); also the prefix of the push subscription and dead-letter topic names."
  type        = string
  default     = "dagtrigger"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,48}[a-z0-9]$", var.function_name))
    error_message = "function_name must be lowercase letters, digits and hyphens, start with a letter, at most 50 characters."
  }
}

variable "service_account_id" {
  description = "Account ID of the function's own service account. Keep it short: Airflow before 2.3 cannot register users whose email is longer than 64 characters (dagtrigger@PROJECT.iam.gserviceaccount.com is 35 characters plus the project ID)."
  type        = string
  default     = "dagtrigger"
}

variable "invoker_account_id" {
  description = "Account ID of the service account that Eventarc and the push subscription invoke the function as."
  type        = string
  default     = "dagtrigger-invoker"
}

variable "runtime" {
  description = "Python runtime of the function."
  type        = string
  default     = "python312"

  validation {
    condition     = contains(["python311", "python312", "python313", "python314"], var.runtime)
    error_message = "runtime must be one of python311, python312, python313, python314."
  }
}

variable "memory" {
  description = "Memory of one function instance, e.g. 256M or 512M."
  type        = string
  default     = "256M"
}

variable "timeout_seconds" {
  description = "Request timeout of the function, and the ack deadline of the push subscription (10 to 540)."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_seconds >= 10 && var.timeout_seconds <= 540
    error_message = "timeout_seconds must be between 10 and 540."
  }
}

variable "max_instances" {
  description = "Upper bound on function instances. Each takes one event at a time, so this bounds the events in flight at Airflow: 10 is past where a small Airflow's API saturates (about 4 in flight; see the README's \"Many instances\")."
  type        = number
  default     = 10
}

variable "min_instances" {
  description = "Instances kept warm (billed while idle); 0 scales to zero."
  type        = number
  default     = 0
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector (projects/P/locations/L/connectors/C) for egress, e.g. through Cloud NAT with a static IP that the Composer web server access control allows. null: no connector."
  type        = string
  default     = null
}

variable "vpc_connector_egress_settings" {
  description = "Which egress goes through vpc_connector: ALL_TRAFFIC (needed for a NAT IP on calls to the web server) or PRIVATE_RANGES_ONLY."
  type        = string
  default     = "ALL_TRAFFIC"

  validation {
    condition     = contains(["ALL_TRAFFIC", "PRIVATE_RANGES_ONLY"], var.vpc_connector_egress_settings)
    error_message = "vpc_connector_egress_settings must be ALL_TRAFFIC or PRIVATE_RANGES_ONLY."
  }
}

variable "build_service_account" {
  description = "Service account email Cloud Build builds the function's image as (it needs roles/cloudbuild.builds.builder, or logs, Artifact Registry and read access to the source bucket). null: Terraform creates build_account_id with roles/cloudbuild.builds.builder, rather than leave the build to the project's default build account (in projects created since July 2024 the Compute Engine default service account, possibly without these roles)."
  type        = string
  default     = null
}

variable "build_account_id" {
  description = "Account ID of the build service account Terraform creates when build_service_account is null."
  type        = string
  default     = "dagtrigger-build"
}

variable "source_bucket_name" {
  description = "Name of the bucket that holds the function's source archive. null: PROJECT-dagtrigger-source."
  type        = string
  default     = null
}
