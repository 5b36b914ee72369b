"""Event races the editor must survive: websocket events that arrive before the POST /prompt reply."""
from __future__ import annotations

from web_ui import find_node, set_number


def test_execution_error_that_beats_the_post_reply_stays_on_its_node(editor):
    page = editor.page
    sampler = find_node(page, "KSampler")
    set_number(page, sampler, "cfg", 60)  # the fake sampler fails at once
    # Hold the POST reply back until the run's execution_error has been handled, as a fast server
    # and a slow page can order them.
    page.evaluate("""async () => {
        const {api} = await import('/scripts/api.js');
        const post = api.queuePrompt.bind(api);
        api.queuePrompt = async (...args) => {
            const res = await post(...args);
            await new Promise((resolve) => {
                api.addEventListener('execution_error', () => setTimeout(resolve, 50), {once: true});
                setTimeout(resolve, 10000);
            });
            return res;
        };
    }""")
    page.click("#queue-button")
    page.wait_for_function("app.execution.ownPrompts.size > 0", timeout=15000)
    assert page.evaluate("Object.keys(app.execution.nodeErrors)") == [str(sampler)]
    text = page.inner_text("#error-panel")
    assert "cfg 60" in text and "too high" in text
