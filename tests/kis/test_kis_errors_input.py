"""OPSQ answers: gateway trouble is transient, request-validation refusals are not."""

from kis.errors import KisApiError, KisServerError, api_error


def test_opsq_gateway_error_is_transient() -> None:
    error = api_error(rt_cd="1", msg_cd="OPSQ0001", msg1="시스템 오류", tr_id="X", http_status=500)
    assert isinstance(error, KisServerError)


def test_opsq_input_check_is_a_plain_refusal() -> None:
    error = api_error(
        rt_cd="2", msg_cd="OPSQ2000", msg1="ERROR : INPUT INVALID_CHECK_ACNO",
        tr_id="VTTC8434R", http_status=500,
    )
    assert type(error) is KisApiError
    assert error.msg_cd == "OPSQ2000"
