terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.5" # glob patterns in archive_file excludes
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}
