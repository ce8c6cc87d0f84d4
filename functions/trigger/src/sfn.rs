//! The cloud [`Starter`]: Step Functions `StartExecution`. Execution names are deterministic (docs/architecture.md,
//! "Run identity"), so a re-delivered event asks for a name that exists: Step Functions either answers idempotently
//! (same name and input, first execution still running) or with `ExecutionAlreadyExists`; both mean "already started"
//! and neither starts a second run.

use async_trait::async_trait;
use aws_sdk_sfn::error::{DisplayErrorContext, SdkError};
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use cpo_common::StepError;

use crate::{Machine, Start, Started, Starter};

/// Environment variables naming the two state machines.
pub const CAMPAIGN_ARN_ENV: &str = "CPO_CAMPAIGN_STATE_MACHINE_ARN";
pub const ANALYSIS_ARN_ENV: &str = "CPO_ANALYSIS_STATE_MACHINE_ARN";

#[derive(Debug, Clone)]
pub struct SfnStarter {
    client: aws_sdk_sfn::Client,
    campaign_arn: String,
    analysis_arn: String,
}

impl SfnStarter {
    pub fn new(client: aws_sdk_sfn::Client, campaign_arn: String, analysis_arn: String) -> Self {
        Self { client, campaign_arn, analysis_arn }
    }

    /// Client from AWS's standard chain (env, profile, web identity, container, instance metadata; endpoint
    /// from `AWS_ENDPOINT_URL_SFN`/`AWS_ENDPOINT_URL`), ARNs from the environment.
    pub async fn from_env() -> Result<Self, StepError> {
        let arn = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| StepError::internal(format!("{name} is not set (the state machine's ARN)")))
        };
        let (campaign, analysis) = (arn(CAMPAIGN_ARN_ENV)?, arn(ANALYSIS_ARN_ENV)?);
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self::new(aws_sdk_sfn::Client::new(&config), campaign, analysis))
    }

    fn arn(&self, machine: Machine) -> &str {
        match machine {
            Machine::Campaign => &self.campaign_arn,
            Machine::Analysis => &self.analysis_arn,
        }
    }
}

#[async_trait]
impl Starter for SfnStarter {
    async fn start(&self, start: &Start) -> Result<Started, StepError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(self.arn(start.machine))
            .name(&start.name)
            .input(start.input.to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Started::Started),
            Err(SdkError::ServiceError(e)) => match e.err() {
                StartExecutionError::ExecutionAlreadyExists(_) => Ok(Started::AlreadyExists),
                StartExecutionError::ExecutionLimitExceeded(_) | StartExecutionError::KmsThrottlingException(_) => {
                    Err(StepError::throttled(format!("StartExecution {}: {}", start.name, e.err())))
                }
                StartExecutionError::StateMachineDoesNotExist(_)
                | StartExecutionError::InvalidArn(_)
                | StartExecutionError::InvalidName(_)
                | StartExecutionError::InvalidExecutionInput(_)
                | StartExecutionError::ValidationException(_) => {
                    Err(StepError::internal(format!("StartExecution {}: {}", start.name, e.err())))
                }
                other => Err(StepError::unavailable(format!("StartExecution {}: {other}", start.name))),
            },
            Err(e) => Err(StepError::unavailable(format!("StartExecution {}: {}", start.name, DisplayErrorContext(e)))),
        }
    }
}
