# Scenario 5, promotion gates (simulator drills: artifact-mount-missing,
# cert-below-threshold). A promoting host whose artifact storage is missing,
# or whose controller certificate is valid for less than the policy's 30
# days, must refuse to promote and say why in `bsfg-gate-agent status`.
# Each part ends by repairing the gate and checking that promotion follows.


def switch_back_to_alpha():
    """From 'beta active, alpha down' back to 'alpha active, beta standby'."""
    alpha.start()
    wait_for_zone([alpha])
    beta.crash()
    wait_serving(alpha)
    beta.start()
    wait_for_zone([beta])


bring_up_zone()

with single_controller:
    with subtest("artifact storage missing on beta: promotion denied"):
        beta.succeed("umount /artifacts")
        alpha.crash()
        beta.wait_until_succeeds(f"{AGENT_STATUS_CMD} | grep -qi artifact", timeout=PROMOTION_TIMEOUT)
        print(agent_status(beta))
        assert_not_serving_for([beta], 20)

    with subtest("artifact storage back: beta promotes"):
        beta.succeed("mount /artifacts")
        wait_serving(beta)
        append("after-artifacts-repaired")

    switch_back_to_alpha()

    with subtest("beta certificate below the threshold: promotion denied"):
        # Signed now, valid 10 days: below the 30-day policy whenever the
        # test runs (a certificate made at build time would not be).
        beta.succeed(
            "openssl req -new -key /var/lib/bsfg/tls/controller.key -subj /CN=plant-t-bsfg -out /tmp/short.csr",
            f"openssl x509 -req -in /tmp/short.csr -CA {PKI}/ca.pem -CAkey {PKI}/ca.key -CAcreateserial"
            f" -CAserial /tmp/short.srl -days 10 -extfile {PKI}/controller.ext -out /var/lib/bsfg/tls/controller.pem",
            f"systemctl restart {AGENT_UNIT}",
        )
        alpha.crash()
        beta.wait_until_succeeds(f"{AGENT_STATUS_CMD} | grep -qi certificate", timeout=PROMOTION_TIMEOUT)
        print(agent_status(beta))
        assert_not_serving_for([beta], 20)

    with subtest("valid certificate back: beta promotes"):
        beta.succeed(
            f"cp {PKI}/controller.pem /var/lib/bsfg/tls/controller.pem",
            f"systemctl restart {AGENT_UNIT}",
        )
        wait_serving(beta)
        append("after-certificate-repaired")
