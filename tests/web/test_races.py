"""Event races the editor must survive: a websocket event that arrives before the POST /prompt reply."""
from __future__ import annotations

from web_ui import find_node


def test_execution_error_that_beats_the_post_reply_stays_on_its_node(editor):
    page = editor.page
    sampler = find_node(page, "KSampler")
    # Deliver a failure for the sampler before queuePrompt's await resumes, as a fast server can.
    page.evaluate("""async (id) => {
        const {api} = await import('/scripts/api.js');
        const post = api.queuePrompt.bind(api);
        api.queuePrompt = async (...args) => {
            const res = await post(...args);
            api.dispatchEvent(new CustomEvent('execution_error', {detail: {
                prompt_id: res.prompt_id, node_id: id, node_type: 'KSampler', exception_type: 'ValueError',
                exception_message: 'failed before the reply was read', traceback: []}}));
            return res;
        };
    }""", str(sampler))
    page.click("#queue-button")
    page.wait_for_function("app.execution.ownPrompts.size > 0")
    page.wait_for_timeout(300)
    assert page.evaluate("Object.keys(app.execution.nodeErrors)") == [str(sampler)]
    assert "failed before the reply was read" in page.inner_text("#error-panel")
