"""The web console at /console/, driven end to end in headless Chromium (Debian's chromium and
chromedriver, through Selenium): log in, create a bucket, upload with progress, download and
compare bytes, presign and fetch with urllib, delete; bucket settings, admin pages, escaping.

Screenshots of each step are saved under the pytest tmp dir and copied to
``$RS3GW_CONSOLE_SCREENSHOTS`` (default ``<tmp>/rs3gw-console-screenshots``); the path is printed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, cleanup_bucket, start_server

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 15.0


def _browser_binaries() -> tuple[str, str] | None:
    """Debian's chromium + chromium-driver; installed with apt-get when running as root."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if None in found and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"],
            capture_output=True,
            timeout=240,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("chromium"), shutil.which("chromedriver")
    browser, driver = found
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("console") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Screenshot folder; copied to a stable path, printed past pytest's capture, at the end."""
    folder = tmp_path_factory.mktemp("console-screenshots")
    yield folder
    target = Path(
        os.environ.get("RS3GW_CONSOLE_SCREENSHOTS", Path(tempfile.gettempdir()) / "rs3gw-console-screenshots")
    )
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nconsole screenshots: {target} ({len(list(target.iterdir()))} files)")


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[Any]:
    binaries = _browser_binaries()
    if binaries is None:
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binaries[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=binaries[1]))
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    yield driver
    driver.quit()


def _wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
    try:
        return WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(
            condition
        )
    except TimeoutException:
        status = driver.find_element(By.ID, "status").text
        raise AssertionError(f"timed out waiting for {what}; status line: {status!r}") from None


def _visible(driver: Any, css: str) -> Any:
    return _wait(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, css)), css)


def _gone(driver: Any, css: str) -> None:
    _wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, css), f"{css} to disappear")


def _accept_confirm(driver: Any) -> None:
    _wait(driver, ec.alert_is_present(), "the confirm dialog").accept()


def _shot(driver: Any, folder: Path, name: str) -> None:
    assert driver.save_screenshot(str(folder / f"{name}.png"))


def _css_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # for these names a CSS string is a JSON string


def _login(driver: Any, server: Server, access_key: str, secret_key: str) -> None:
    driver.get(server.endpoint + "/console/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(server.endpoint + "/console/")
    _visible(driver, "#login-form")
    _wait(driver, lambda d: d.find_element(By.ID, "region").get_attribute("value") == "us-east-1", "region")
    driver.find_element(By.ID, "access-key").send_keys(access_key)
    driver.find_element(By.ID, "secret-key").send_keys(secret_key)
    driver.find_element(By.ID, "login").click()


def _logged_in(driver: Any, server: Server) -> None:
    _login(driver, server, ACCESS_KEY, SECRET_KEY)
    _visible(driver, "#create-bucket")


def test_console_files_are_static_and_locked_down(console_server: Server) -> None:
    with urllib.request.urlopen(console_server.endpoint + "/console/") as resp:
        assert resp.headers["content-type"].startswith("text/html")
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert b'src="app.js"' in resp.read()
    with urllib.request.urlopen(console_server.endpoint + "/console/config.json") as resp:
        assert json.load(resp) == {"region": "us-east-1"}
    with urllib.request.urlopen(console_server.endpoint + "/console/sigv4.js") as resp:
        assert resp.headers["content-type"].startswith("text/javascript")
    # Anything but the known assets is ordinary S3 addressing (here: an anonymous GET of a key).
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(console_server.endpoint + "/console/no-such-asset.js")
    assert err.value.code in (403, 404) and b"<Code>" in err.value.read()


def test_signed_and_vhost_requests_are_s3_not_console(
    console_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    s3 = console_server.client()
    with pytest.raises(ClientError) as err:  # signed: bucket "console", not the static page
        s3.list_objects_v2(Bucket="console")
    assert err.value.response["Error"]["Code"] == "NoSuchBucket"
    srv = start_server(tmp_path_factory.mktemp("console-vhost") / "data", "--domain", "s3.example.test")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/console/", headers={"Host": f"photos.s3.example.test:{srv.port}"})
        resp = conn.getresponse()
        assert resp.status == 404 and b"<Code>NoSuchBucket</Code>" in resp.read()
        conn.request("GET", "/console/", headers={"Host": f"127.0.0.1:{srv.port}"})
        resp = conn.getresponse()
        assert resp.status == 200 and b"rs3gw console" in resp.read()
        conn.close()
    finally:
        srv.stop()


def test_wrong_credentials_show_a_login_error(console_server: Server, browser: Any, shots: Path) -> None:
    _login(browser, console_server, ACCESS_KEY, "not-the-secret")
    error = _wait(browser, lambda d: d.find_element(By.ID, "login-error").text, "the login error")
    assert "SignatureDoesNotMatch" in error
    _shot(browser, shots, "01-login-wrong-secret")
    assert browser.find_element(By.ID, "nav").get_attribute("hidden") is not None
    _login(browser, console_server, "NOSUCHKEY", SECRET_KEY)
    _wait(
        browser,
        lambda d: "InvalidAccessKeyId" in d.find_element(By.ID, "login-error").text,
        "unknown key error",
    )


def test_bucket_upload_download_presign_delete(
    console_server: Server, browser: Any, shots: Path, downloads: Path
) -> None:
    s3 = console_server.client()
    bucket = f"console-{uuid.uuid4().hex[:10]}"
    key = "docs/report 1+ü.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    upload = downloads.parent / "report 1+ü.bin"
    upload.write_bytes(data)
    try:
        _logged_in(browser, console_server)
        _shot(browser, shots, "02-buckets")
        browser.find_element(By.ID, "new-bucket").send_keys(bucket)
        browser.find_element(By.ID, "create-bucket").click()
        _visible(browser, f"tr[data-bucket={_css_str(bucket)}] a.bucket-link").click()
        assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200

        # A folder: put one object under docs/ with boto3, then browse into the prefix.
        s3.put_object(Bucket=bucket, Key="docs/seed.txt", Body=b"seed")
        browser.refresh()
        _visible(browser, 'tr[data-prefix="docs/"] a').click()
        _visible(browser, 'tr[data-key="docs/seed.txt"]')

        browser.find_element(By.ID, "upload-files").send_keys(str(upload))
        row = f"tr[data-key={_css_str(key)}]"
        _visible(browser, row)
        progress = browser.find_element(By.ID, "upload-progress")
        assert progress.get_attribute("value") == "100"
        assert browser.find_element(By.ID, "upload-label").text.endswith("100%")
        _shot(browser, shots, "03-uploaded")
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data

        browser.find_element(By.CSS_SELECTOR, f"{row} button.download").click()
        saved = downloads / "report 1+ü.bin"
        _wait(browser, lambda d: saved.exists() and saved.stat().st_size == len(data), "the downloaded file")
        assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(data).digest()

        browser.find_element(By.ID, "presign-expiry").clear()
        browser.find_element(By.ID, "presign-expiry").send_keys("600")
        browser.find_element(By.CSS_SELECTOR, f"{row} button.presign").click()
        url = _wait(browser, lambda d: d.find_element(By.ID, "presigned-url").get_attribute("value"), "link")
        assert "X-Amz-Expires=600" in url and "X-Amz-Signature=" in url
        with urllib.request.urlopen(url) as resp:  # no credentials: the query signature alone
            assert resp.read() == data
        _shot(browser, shots, "04-presigned")

        browser.find_element(By.CSS_SELECTOR, f"{row} button.delete").click()
        _accept_confirm(browser)
        _gone(browser, row)
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key=key)

        s3.delete_object(Bucket=bucket, Key="docs/seed.txt")
        browser.find_element(By.LINK_TEXT, "Buckets").click()
        _visible(browser, f"tr[data-bucket={_css_str(bucket)}] button.delete-bucket").click()
        _accept_confirm(browser)
        _gone(browser, f"tr[data-bucket={_css_str(bucket)}]")
        with pytest.raises(ClientError):
            s3.head_bucket(Bucket=bucket)
    finally:
        cleanup_bucket(s3, bucket)


def test_bucket_settings_edit(console_server: Server, browser: Any, shots: Path) -> None:
    s3 = console_server.client()
    bucket = f"console-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    try:
        _logged_in(browser, console_server)
        _visible(browser, f"tr[data-bucket={_css_str(bucket)}] a[href*=settings]").click()
        _wait(
            browser, lambda d: d.find_element(By.ID, "versioning-state").text == "never enabled", "versioning"
        )
        browser.find_element(By.CSS_SELECTOR, "#versioning-status option[value=Enabled]").click()
        browser.find_element(By.ID, "save-versioning").click()
        _wait(
            browser, lambda d: d.find_element(By.ID, "versioning-state").text == "Enabled", "versioning saved"
        )
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

        for section in ("lifecycle", "policy", "encryption"):
            _visible(browser, f"#{section}-section[data-state=ready]")
            buttons = browser.find_elements(By.CSS_SELECTOR, f"#{section}-section button")
            next(b for b in buttons if b.text == "Insert example").click()
            next(b for b in buttons if b.text == "Save").click()
            _wait(
                browser,
                lambda d: "saved" in d.find_element(By.ID, "status").text,
                f"{section} saved",
            )
            browser.execute_script("document.getElementById('status').textContent = ''")
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert rules[0]["ID"] == "expire-tmp" and rules[0]["Expiration"]["Days"] == 7
        assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Action"] in (
            "s3:GetObject",
            ["s3:GetObject"],
        )
        enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

        # Invalid JSON never leaves the page; the old policy stays.
        area = browser.find_element(By.ID, "policy-text")
        area.clear()
        area.send_keys("{not json")
        next(
            b for b in browser.find_elements(By.CSS_SELECTOR, "#policy-section button") if b.text == "Save"
        ).click()
        _wait(browser, lambda d: "not valid JSON" in d.find_element(By.ID, "status").text, "the JSON error")
        assert s3.get_bucket_policy(Bucket=bucket)["Policy"]
        browser.refresh()
        _wait(
            browser,
            lambda d: "AES256" in d.find_element(By.ID, "encryption-text").get_attribute("value"),
            "reload",
        )
        _shot(browser, shots, "05-settings")
    finally:
        cleanup_bucket(s3, bucket)


def test_names_are_rendered_as_text(console_server: Server, browser: Any, shots: Path) -> None:
    s3 = console_server.client()
    bucket = f"console-{uuid.uuid4().hex[:10]}"
    hostile = "<img src=x onerror=\"document.title='pwned'\">&amp;.txt"
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key=hostile, Body=b"x")
        _logged_in(browser, console_server)
        browser.get(f"{console_server.endpoint}/console/#/objects/{bucket}")
        cell = _visible(browser, f"tr[data-key={_css_str(hostile)}] td")
        assert cell.text == hostile
        assert not browser.find_elements(By.CSS_SELECTOR, "main img")
        assert browser.title != "pwned"
        try:
            browser.switch_to.alert.dismiss()
            pytest.fail("an alert opened")
        except NoAlertPresentException:
            pass
        _shot(browser, shots, "06-escaped-key")
    finally:
        cleanup_bucket(s3, bucket)


def test_admin_pages(console_server: Server, browser: Any, shots: Path) -> None:
    s3 = console_server.client()
    bucket = f"console-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a.bin", Body=b"a" * 5000)
    user = f"console-user-{uuid.uuid4().hex[:6]}"
    try:
        _logged_in(browser, console_server)
        browser.find_element(By.LINK_TEXT, "Users & keys").click()
        _visible(browser, "#new-user").send_keys(user)
        next(
            b for b in browser.find_elements(By.CSS_SELECTOR, "main button") if b.text == "Create user"
        ).click()
        _visible(browser, f"tr[data-user={_css_str(user)}]")
        next(
            b for b in browser.find_elements(By.CSS_SELECTOR, "main button") if b.text == "Create key"
        ).click()
        secret_line = _wait(browser, lambda d: d.find_element(By.ID, "new-secret").text, "the new secret")
        access_key = secret_line.split()[2].rstrip(",")
        secret = secret_line.split("secret ", 1)[1].split(" ", 1)[0]
        _visible(browser, f"tr[data-access-key={_css_str(access_key)}]")
        fresh = console_server.client(access_key, secret)
        deadline = time.time() + 10
        while True:  # the new key is live once the key ring has reloaded
            try:
                assert "Buckets" in fresh.list_buckets()
                break
            except ClientError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        _shot(browser, shots, "07-users-keys")

        browser.find_element(By.LINK_TEXT, "Usage").click()
        _visible(browser, "svg.chart rect")
        labels = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "svg.chart text")]
        assert bucket in labels
        _shot(browser, shots, "08-usage")

        browser.find_element(By.LINK_TEXT, "Audit log").click()
        _wait(
            browser,
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")) > 0,
            "audit rows",
        )
        browser.find_element(By.ID, "audit-bucket").send_keys(bucket)
        next(b for b in browser.find_elements(By.CSS_SELECTOR, "main button") if b.text == "Refresh").click()
        _wait(
            browser,
            lambda d: (
                {r.text for r in d.find_elements(By.CSS_SELECTOR, "#audit-table tbody td:nth-child(3)")}
                >= {"CreateBucket", "PutObject"}
            ),
            "the bucket's audit events",
        )
        _shot(browser, shots, "09-audit")
    finally:
        cleanup_bucket(s3, bucket)


def test_analytics_charts(console_server: Server, browser: Any, shots: Path) -> None:
    """Request series, bytes, errors, access frequency and cost drawn from the analytics admin API."""
    s3 = console_server.client()
    bucket = f"console-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    try:
        for i in range(3):
            s3.put_object(Bucket=bucket, Key=f"obj-{i}", Body=b"z" * 4000)
        for _ in range(5):
            s3.get_object(Bucket=bucket, Key="obj-0")["Body"].read()
        with pytest.raises(ClientError):
            s3.get_object(Bucket=bucket, Key="no-such-key")
        _logged_in(browser, console_server)
        browser.find_element(By.LINK_TEXT, "Analytics").click()
        _visible(browser, "#chart-requests polyline")
        browser.find_element(By.CSS_SELECTOR, f"#analytics-bucket option[value={_css_str(bucket)}]").click()
        # The page re-renders for the chosen bucket: wait for the new one, then read it.
        _wait(
            browser,
            lambda d: d.find_element(By.ID, "analytics-bucket").get_attribute("value") == bucket,
            "the bucket's charts",
        )

        def total(chart: str, series: str) -> float:
            line = browser.find_element(By.CSS_SELECTOR, f"#{chart} polyline[data-series={_css_str(series)}]")
            return float(line.get_attribute("data-total"))

        assert total("chart-requests", "GET") == 6  # 5 GetObject + the failed one
        assert total("chart-requests", "PUT") == 3 and total("chart-requests", "errors") == 1
        assert total("chart-requests", "OTHER") == 1  # CreateBucket
        assert total("chart-bytes", "bytes in") == 12000 and total("chart-bytes", "bytes out") >= 20000
        errors = browser.find_element(By.CSS_SELECTOR, "#chart-errors rect[data-label=NoSuchKey]")
        assert errors.get_attribute("data-value") == "1"
        freq = {
            r.get_attribute("data-label"): r.get_attribute("data-value")
            for r in browser.find_elements(By.CSS_SELECTOR, "#chart-access rect")
        }
        assert freq["read 0 times"] == "2" and freq["read 2-10 times"] == "1", freq
        parts = browser.find_elements(By.CSS_SELECTOR, "#chart-cost rect[data-part]")
        assert {p.get_attribute("data-part") for p in parts} >= {"storage / month", "requests", "egress"}
        assert "Total: $" in browser.find_element(By.ID, "cost-total").text
        _shot(browser, shots, "10-analytics")
        browser.execute_script("document.getElementById('chart-access').scrollIntoView()")
        _shot(browser, shots, "11-analytics-access-cost")
    finally:
        cleanup_bucket(s3, bucket)


def test_admin_pages_hidden_for_other_accounts(console_server: Server, browser: Any) -> None:
    _login(browser, console_server, USER2[1], USER2[2])
    _visible(browser, "#create-bucket")
    for feature in ("users", "usage", "audit", "analytics"):
        link = browser.find_element(By.CSS_SELECTOR, f"[data-feature={feature}]")
        assert not link.is_displayed()


def test_no_script_errors_or_csp_violations(browser: Any) -> None:
    """Runs last: everything the pages did above ran under the CSP without a script error."""
    problems = [
        e["message"]
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE"
        and "favicon.ico" not in e["message"]
        and "Failed to load resource" not in e["message"]
    ]
    violations = [
        e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]
    ]
    assert not problems and not violations, problems + violations
