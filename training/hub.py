"""Upload a finished model folder (weights, config, code, processor, model card) to the Hugging Face Hub."""

from pathlib import Path

from huggingface_hub import HfApi

# Trainer by-products that are not part of the model
IGNORED = ["checkpoint-*", "checkpoint-*/**", "runs/**", "*.bin", "trainer_state.json"]


def push_folder_to_hub(
    folder: str | Path, repo_id: str | None, token: str | None = None, private: bool | None = None,
    commit_message: str = "Upload SiaSamRea model",
) -> str:
    """Create `repo_id` if needed and upload `folder` in one commit; returns the commit URL."""
    if not repo_id:
        raise ValueError("push_to_hub needs --hub_model_id, e.g. your-name/siasamrea-msrvtt-qa")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message,
                             ignore_patterns=IGNORED)
    return info.commit_url
